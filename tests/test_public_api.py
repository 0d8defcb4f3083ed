"""The public API is what `sora_widgets.__all__` lists: sorted, all reachable, one error tree."""

from __future__ import annotations

import subprocess
import sys

import sora_widgets as sw

EXPECTED = {
    "BudgetError", "CellTakenError", "CredentialsError", "EndpointInfo", "EndpointSchema", "EndpointStatus", "FalBackend", "Field",
    "Generation", "GenerationError", "History", "HistoryError", "Job", "JobEvent", "JobRunner", "JobStatus",
    "NotFoundError", "OfflineError", "Panel", "PlatformError", "PreviewBackend", "SchemaError", "SoraWidgetsError", "Sweep",
    "ValidationError", "WaitTimeout", "__version__", "bundled_endpoints", "endpoint_status", "estimate_cost",
    "fetch_schema", "find_endpoints", "generate", "generate_async",
    "load_schema", "metrics", "resume", "submit", "sweep",
}


def test_all_is_sorted_and_is_the_documented_api() -> None:
    assert sw.__all__ == sorted(sw.__all__)
    assert set(sw.__all__) == EXPECTED


def test_every_public_name_resolves_in_a_fresh_process() -> None:
    code = ("import sora_widgets as sw; missing = [n for n in sw.__all__ if getattr(sw, n, None) "
            "is None]; print(missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_functions_stay_functions_after_their_modules_are_imported() -> None:
    import sora_widgets.jobs
    import sora_widgets.research.metrics
    import sora_widgets.research.sweeps  # noqa: F401

    assert all(callable(getattr(sw, name)) for name in ("sweep", "metrics", "generate", "submit"))
    assert sw.sweep.__module__ == "sora_widgets.research.sweeps"


def test_every_public_error_derives_from_one_base() -> None:
    errors = [getattr(sw, n) for n in sw.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, sw.SoraWidgetsError) for e in errors)
    assert issubclass(sw.ValidationError, ValueError) and issubclass(sw.BudgetError, ValueError)
    assert issubclass(sw.CredentialsError, sw.GenerationError)
    assert issubclass(sw.OfflineError, sw.SchemaError)


def test_validation_error_carries_every_problem_and_reads_well() -> None:
    error = sw.ValidationError([("duration", "must be one of 4, 8"), ("model", "is required")],
                               endpoint_id="fal-ai/sora-2/image-to-video")
    assert error.fields == ["duration", "model"]
    assert str(error).splitlines()[0] == "2 problems with the arguments for fal-ai/sora-2/image-to-video:"
    assert "  - duration: must be one of 4, 8" in str(error)
