"""The run history: one SQLite file per run folder, one row per job.

Owns the store (`History`), its named migrations, row decoding, export, the upload cache and the
bookkeeping `resume()` relies on (owners, heartbeats, claims). May import only the foundations;
it knows nothing of media, jobs, backends or widgets.
"""

from .rows import HistoryRecord
from .store import History

__all__ = ["History", "HistoryRecord"]
