"""Jobs: one generation's life, from validated arguments to a finished history row.

Owns the `JobRunner` (the loop thread, the concurrency limit and a group's own `Limit`, the live
jobs, the history and download threads, the heartbeat, the backend cache), the `Job` (`job.py`:
what callers hold; `life.py`: its life on the loop and its status moves; `output.py`: keeping
its media), and the generation helper (`generate`, `submit`, `resume`). May import the
foundations, `schema`, `media`, `history` and `backends`; never `widgets` or `research`.
"""

from .generation import generate, generate_async, prepare_arguments, resume, submit
from .job import Job, cancel_jobs
from .runner import JobRunner, Limit, default_runner, max_jobs

__all__ = ["Job", "JobRunner", "Limit", "cancel_jobs", "default_runner", "generate", "generate_async",
           "max_jobs", "prepare_arguments", "resume", "submit"]
