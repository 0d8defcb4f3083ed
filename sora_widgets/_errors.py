"""One error tree for everything sora_widgets raises on purpose.

    SoraWidgetsError
    ├── ValidationError (also ValueError)   bad arguments, caught before anything is sent
    ├── SchemaError                          a schema that cannot be read or found
    │   └── OfflineError                     a live document needed but the network is unreachable
    ├── NotFoundError (also KeyError)        no such history row, saved sweep, field or upload
    ├── PlatformError                        fal's Platform API (models, prices) answered an error
    ├── WaitTimeout (also TimeoutError)      a wait that ran out; the job or sweep keeps running
    ├── BudgetError (also ValueError)        a sweep whose estimate exceeds its budget
    ├── GenerationError                      a job that failed, was cancelled or could not be followed
    │   └── CredentialsError                 fal refused or is missing the key (never shows the key)
    └── HistoryError                         a history file that is corrupt, foreign or too new
        └── CellTakenError                   a sweep's cell that another process already recorded

Errors carry their context as keyword-only attributes (field, endpoint, request id, history id),
never secrets.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from ._secrets import scrub_text

#: every cause a GenerationError names, in one word; the views (cards, CLI) read these same words
ErrorKind = Literal[
    "validation", "content_policy", "ip_blocked", "credentials", "rate_limited", "timeout",
    "cancelled", "server", "network", "lost_answer", "endpoint_unavailable", "not_found",
    "already_completed", "rejected", "download", "media", "render", "internal", "interrupted",
    "failed", "unknown", "error",
]
ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


def error_kind(text: str | None) -> ErrorKind:
    """A stored or reported kind as an ErrorKind ("error" for anything this release does not know)."""
    return text if text in ERROR_KINDS else "error"  # type: ignore[return-value]  # narrowed by the set


class SoraWidgetsError(Exception):
    """Base class of every error sora_widgets raises on purpose."""


class ValidationError(SoraWidgetsError, ValueError):
    """Arguments that the endpoint would reject; `.errors` lists every (field, message) pair."""

    def __init__(self, errors: list[tuple[str, str]], *, endpoint_id: str | None = None) -> None:
        self.errors = list(errors)
        self.endpoint_id = endpoint_id
        where = f" for {endpoint_id}" if endpoint_id else ""
        lines = "\n".join(f"  - {field}: {message}" for field, message in self.errors)
        noun = "problem" if len(self.errors) == 1 else "problems"
        super().__init__(f"{len(self.errors)} {noun} with the arguments{where}:\n{lines}")

    @property
    def fields(self) -> list[str]:
        """The names of the fields that have a problem, in order, without repeats."""
        return list(dict.fromkeys(field for field, _ in self.errors))


class SchemaError(SoraWidgetsError):
    """An endpoint schema that cannot be found or read."""

    def __init__(self, message: str, *, endpoint_id: str | None = None) -> None:
        self.endpoint_id = endpoint_id
        super().__init__(message)


class OfflineError(SchemaError):
    """A live document or service was needed but could not be reached."""


class NotFoundError(SoraWidgetsError, KeyError):
    """Something asked for by id or name does not exist: a history row, a saved sweep, a field.

    Also a KeyError, so `except KeyError` and `dict`-like lookups keep working; `.key` is what
    was asked for."""

    def __init__(self, message: str, *, key: Any = None) -> None:
        self.key = key
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class WaitTimeout(SoraWidgetsError, TimeoutError):
    """`job.result(timeout)` or `sweep.wait(timeout)` ran out of time: nothing failed, the work
    keeps running, and waiting again later is fine. Also a TimeoutError."""


class PlatformError(SoraWidgetsError):
    """fal's Platform API (model search, prices, estimates) answered with an error."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class BudgetError(SoraWidgetsError, ValueError):
    """A sweep or request whose estimated cost exceeds the budget it was given."""

    def __init__(self, message: str, *, estimate_usd: float, budget_usd: float) -> None:
        self.estimate_usd = estimate_usd
        self.budget_usd = budget_usd
        super().__init__(message)


class GenerationError(SoraWidgetsError):
    """A generation that did not produce a video: failed, cancelled, refused or lost.

    `kind` names the cause in one word (e.g. "validation", "content_policy", "credentials",
    "rate_limited", "timeout", "cancelled", "server", "network", "endpoint_unavailable": fal
    has no such endpoint any more), `generation` is the
    Generation record when there is one, `history_id` its row in the history.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = "error",
        endpoint_id: str | None = None,
        request_id: str | None = None,
        history_id: int | None = None,
        field: str | None = None,
        status_code: int | None = None,
        generation: Any = None,
    ) -> None:
        self.kind = kind
        self.endpoint_id = endpoint_id
        self.request_id = request_id
        self.history_id = history_id
        self.field = scrub_text(field) if field else field
        self.status_code = status_code
        self.generation = generation
        super().__init__(scrub_text(message))  # a server may echo the key back in its answer


class CredentialsError(GenerationError):
    """fal has no key, or refused the one it was given; the message names the variable only."""


class HistoryError(SoraWidgetsError):
    """A history file that is corrupt, not a sora_widgets history, or from a newer release."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class CellTakenError(HistoryError):
    """A sweep's cell that already has a run in the history (another process, e.g. a second
    notebook reopening the sweep, recorded it first): it is not sent again. `history_id` is
    that run."""

    def __init__(self, message: str, *, history_id: int, path: str | None = None) -> None:
        self.history_id = history_id
        super().__init__(message, path=path)
