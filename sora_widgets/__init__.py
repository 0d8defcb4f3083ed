"""sora-widgets: fal.ai image-to-video (Sora 2 as the reference, any fal video model) in notebooks.

Schema-driven controls, a generation helper that never loses a job, an SQLite history one call
from a DataFrame, and side-by-side comparisons. Heavy parts (widgets, pandas, video) are
imported on first use so `import sora_widgets` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import (
    BudgetError,
    CredentialsError,
    GenerationError,
    HistoryError,
    OfflineError,
    PlatformError,
    SchemaError,
    SoraWidgetsError,
    ValidationError,
)
from ._version import __version__
from .records import Generation, JobEvent, JobStatus
from .schema import EndpointSchema, Field, bundled_endpoints, fetch_schema, load_schema

#: public names served lazily: name -> "module" or "module:attribute" that defines it
_LAZY = {
    "History": "history",
    "EndpointInfo": "endpoints",
    "EndpointStatus": "endpoints",
    "endpoint_status": "endpoints",
    "find_endpoints": "endpoints",
    "estimate_cost": "pricing",
    "Job": "jobs",
    "JobRunner": "_runner",
    "generate": "generation",
    "generate_async": "generation",
    "submit": "generation",
    "resume": "generation",
    "Panel": "widgets.panel",
    "Sweep": "sweeps",
    "sweep": "sweeps",
    "metrics": "video_metrics:generation_metrics",
    "FalBackend": "backends.fal",
    "PreviewBackend": "backends.preview",
}

__all__ = sorted([
    "BudgetError",
    "CredentialsError",
    "EndpointSchema",
    "Field",
    "Generation",
    "GenerationError",
    "HistoryError",
    "JobEvent",
    "JobStatus",
    "OfflineError",
    "PlatformError",
    "SchemaError",
    "SoraWidgetsError",
    "ValidationError",
    "__version__",
    "bundled_endpoints",
    "fetch_schema",
    "load_schema",
    *_LAZY,
])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, _, attribute = _LAZY[name].partition(":")
        value = getattr(importlib.import_module(f".{module_name}", __name__), attribute or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sora_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
