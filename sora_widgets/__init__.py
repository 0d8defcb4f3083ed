"""sora-widgets: fal.ai image-to-video (Sora 2 as the reference, any fal video model) in notebooks.

Schema-driven controls, a generation helper that never loses a job, an SQLite history one call
from a DataFrame, and side-by-side comparisons. Heavy parts (widgets, pandas, video) are
imported on first use so `import sora_widgets` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    BudgetError,
    CellTakenError,
    CredentialsError,
    GenerationError,
    HistoryError,
    NotFoundError,
    OfflineError,
    PlatformError,
    SchemaError,
    SoraWidgetsError,
    ValidationError,
    WaitTimeout,
)
from ._version import __version__
from .records import Generation, JobEvent, JobStatus
from .schema.documents import EndpointSchema, bundled_endpoints, fetch_schema, load_schema
from .schema.fields import Field

if TYPE_CHECKING:  # the lazy names below, as type checkers and editors should see them
    from .backends.fal import FalBackend
    from .backends.preview import PreviewBackend
    from .history.store import History
    from .jobs.generation import generate, generate_async, resume, submit
    from .jobs.job import Job
    from .jobs.runner import JobRunner
    from .pricing import estimate_cost
    from .research.metrics import generation_metrics as metrics
    from .research.sweeps import Sweep, sweep
    from .schema.endpoints import EndpointInfo, EndpointStatus, endpoint_status, find_endpoints
    from .widgets.panel import Panel

#: public names served lazily: name -> "module" or "module:attribute" that defines it
_LAZY = {
    "History": "history.store",
    "EndpointInfo": "schema.endpoints",
    "EndpointStatus": "schema.endpoints",
    "endpoint_status": "schema.endpoints",
    "find_endpoints": "schema.endpoints",
    "estimate_cost": "pricing",
    "Job": "jobs.job",
    "JobRunner": "jobs.runner",
    "generate": "jobs.generation",
    "generate_async": "jobs.generation",
    "submit": "jobs.generation",
    "resume": "jobs.generation",
    "Panel": "widgets.panel",
    "Sweep": "research.sweeps",
    "sweep": "research.sweeps",
    "metrics": "research.metrics:generation_metrics",
    "FalBackend": "backends.fal",
    "PreviewBackend": "backends.preview",
}

__all__ = [
    "BudgetError",
    "CellTakenError",
    "CredentialsError",
    "EndpointInfo",
    "EndpointSchema",
    "EndpointStatus",
    "FalBackend",
    "Field",
    "Generation",
    "GenerationError",
    "History",
    "HistoryError",
    "Job",
    "JobEvent",
    "JobRunner",
    "JobStatus",
    "NotFoundError",
    "OfflineError",
    "Panel",
    "PlatformError",
    "PreviewBackend",
    "SchemaError",
    "SoraWidgetsError",
    "Sweep",
    "ValidationError",
    "WaitTimeout",
    "__version__",
    "bundled_endpoints",
    "endpoint_status",
    "estimate_cost",
    "fetch_schema",
    "find_endpoints",
    "generate",
    "generate_async",
    "load_schema",
    "metrics",
    "resume",
    "submit",
    "sweep",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module_name, _, attribute = _LAZY[name].partition(":")
        value = getattr(importlib.import_module(f".{module_name}", __name__), attribute or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sora_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
