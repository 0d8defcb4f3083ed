"""Who follows a job: the process that owns a history row, and how another process knows it is gone.

A row records its owner (host, pid, the process's start time) and a heartbeat the owner renews
while it follows the job. `resume()` takes over a row only when its owner is gone: on this host,
the process with that pid and start time no longer runs; on any host, the heartbeat is older
than the lease. The start time tells a reused pid from the process that wrote the row.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["HEARTBEAT_S", "LEASE_S", "Owner", "owner_gone", "pid_alive", "this_process"]

#: how often a live process renews the heartbeat of the rows it follows
HEARTBEAT_S = 15.0
#: a heartbeat older than this means the owner is gone, whatever host it ran on
LEASE_S = 90.0


@dataclass(frozen=True)
class Owner:
    """A process that follows jobs: where it runs, its pid, and when it started."""

    host: str
    pid: int
    started: str  # the process's start time as the OS counts it; "" where it cannot be read
    pid_space: str = ""  # Linux's pid namespace: a pid means nothing across two of them

    def to_text(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_text(cls, text: str | None) -> Owner | None:
        """The owner a row records, or None for a row without one (or an unreadable one)."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(host=str(data["host"]), pid=int(data["pid"]), started=str(data["started"]),
                       pid_space=str(data.get("pid_space", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def is_alive(self) -> bool:
        """Whether this owner's process still runs; only answerable on its own host and pid space."""
        started = _process_start(self.pid)
        if started is not None:
            return started == self.started
        return pid_alive(self.pid)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs here (a killed one its parent has not reaped yet does not)."""
    started = _process_start(pid)
    if started is not None:
        return started != ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _pid_space() -> str:
    """This process's pid namespace (Linux), so containers sharing a host name are told apart."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux's /proc); "" for a process
    that is gone; None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except FileNotFoundError:
        return "" if os.path.isdir("/proc/self") else None  # no such process, where /proc exists
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):
        return ""  # a killed process its parent has not reaped yet: gone all the same
    return fields[19] if len(fields) > 19 else None


@functools.cache
def _this_process(pid: int) -> Owner:
    return Owner(host=socket.gethostname(), pid=pid, started=_process_start(pid) or "",
                 pid_space=_pid_space())


def this_process() -> Owner:
    """The Owner of the calling process (worked out again in a forked child)."""
    return _this_process(os.getpid())


def owner_gone(owner_text: str | None, heartbeat_at: datetime | None, *,
               now: datetime | None = None, lease_s: float = LEASE_S) -> bool:
    """True when no live process follows a row: no owner, a dead one on this host, or (owned on
    another host, or in another container's pid namespace) a heartbeat past the lease."""
    owner = Owner.from_text(owner_text)
    if owner is None:
        return True
    if owner == this_process():
        return False  # this process follows it (or is about to)
    me = this_process()
    if owner.host == me.host and owner.pid_space == me.pid_space:
        return not owner.is_alive()
    now = now or datetime.now(timezone.utc)
    return heartbeat_at is None or now - heartbeat_at > timedelta(seconds=lease_s)
