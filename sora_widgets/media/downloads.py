"""Fetching from outside, bounded: only http(s) URLs (never a local file, even through a redirect),
within a size cap and an overall deadline, kept only when the body looks like what was asked for.

httpx is imported inside the functions that need it, so `import sora_widgets` stays fast.
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .._errors import GenerationError, ValidationError
from .files import part_file
from .probe import looks_like, probe_video, sniff_image, sniff_video

if TYPE_CHECKING:
    import httpx

#: `download`'s overall deadline when none is given: long enough for a 2 GB video on a slow line.
DOWNLOAD_DEADLINE_S = 15 * 60.0
#: The environment variable that caps one download, in megabytes (read at each call).
MAX_DOWNLOAD_MB_VAR = "SORA_WIDGETS_MAX_DOWNLOAD_MB"
_DEFAULT_MAX_DOWNLOAD_MB = 2048
_MAX_REDIRECTS = 5
_SNIFF_BYTES = 512  # how much of a body is looked at before it is believed to be a video or image
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters or more: "C:\x" is a path


def url_scheme(text: str) -> str | None:
    """The lower-case URL scheme `text` starts with ("https", "data", "file" ...), or None for a path."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host, as a phrase ("has no host"), or None."""
    scheme = url_scheme(url)
    if scheme is None:
        return "is a local path, not an http(s) URL"
    if scheme not in ("http", "https"):
        return f"uses {scheme}:, and only http(s) URLs are fetched"
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    return None if host else "has no host"


def shown_url(url: str) -> str:
    """`url` fit for a message: no query string, fragment or user:password (signed URLs carry
    tokens there), at most 100 characters."""
    base = re.split(r"[?#]", url, maxsplit=1)[0]
    text = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@", r"\1", base) + ("?..." if "?" in url else "")
    return text if len(text) <= 100 else text[:97] + "..."


def _refused(url: str, why: str) -> GenerationError:
    """The error for a download that was refused: it names the URL (without its query) and why."""
    return GenerationError(f"refused to download {shown_url(url)}: {why}", kind="download")


def _refuse_bad_redirect(response: httpx.Response) -> None:
    """A response hook: stop before httpx follows a redirect to anything but an http(s) URL."""
    if response.has_redirect_location:
        target = urllib.parse.urljoin(str(response.request.url), response.headers["location"])
        if (problem := url_problem(target)) is not None:
            raise _refused(str(response.request.url), f"it redirects to {shown_url(target)}, which {problem}")


def _http_client(timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """A client that follows at most a few redirects, each checked to stay on http(s)."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                        follow_redirects=True, max_redirects=_MAX_REDIRECTS, transport=transport,
                        event_hooks={"response": [_refuse_bad_redirect]})


def _check_status(response: httpx.Response, url: str) -> None:
    """Refuse an HTTP error answer, keeping its status code on the error."""
    if response.status_code >= 400:
        raise GenerationError(f"downloading {shown_url(url)} failed: HTTP {response.status_code}",
                              kind="download", status_code=response.status_code)


def _bounded_chunks(response: httpx.Response, url: str, *, max_bytes: int, limit_name: str,
                    started: float, deadline_s: float) -> Iterator[bytes]:
    """The body as it arrives (a fixed chunk size would wait to fill it), cut past `max_bytes`
    or `deadline_s` after the monotonic time `started`, so neither a flood nor a trickle lasts."""
    got = 0
    for chunk in response.iter_bytes():
        got += len(chunk)
        if got > max_bytes:
            raise _refused(url, f"it sent more than the limit of {_megabytes(max_bytes)} "
                                f"({limit_name}); the download was cut")
        if time.monotonic() - started > deadline_s:
            raise _refused(url, f"it was still arriving after the deadline of {deadline_s:g} s "
                                f"({got} bytes so far)")
        yield chunk


def fetch_bytes(url: str, *, timeout: float, max_bytes: int, deadline_s: float, limit_name: str) -> bytes:
    """A small body (an input image) from an http(s) URL, in memory, bounded like a download;
    `limit_name` names the cap in the refusal. Raises GenerationError(kind="download")."""
    import httpx

    started = time.monotonic()
    try:
        with _http_client(timeout, None) as client, client.stream("GET", url) as response:
            _check_status(response, url)
            return b"".join(_bounded_chunks(response, url, max_bytes=max_bytes, limit_name=limit_name,
                                            started=started, deadline_s=deadline_s))
    except httpx.HTTPError as exc:
        raise GenerationError(f"could not fetch {shown_url(url)}: {exc}", kind="download") from exc


def _megabytes(n: int) -> str:
    """A byte count for messages, in MB with one decimal."""
    return f"{n / (1 << 20):.1f} MB"


def _max_download_bytes() -> int:
    """The cap on one download: SORA_WIDGETS_MAX_DOWNLOAD_MB megabytes (default 2048), read now."""
    raw = os.environ.get(MAX_DOWNLOAD_MB_VAR, "").strip()
    if not raw:
        return _DEFAULT_MAX_DOWNLOAD_MB << 20
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationError([(MAX_DOWNLOAD_MB_VAR, "must be a whole number of megabytes, "
                                                     f"1 or more (got {raw!r})")])
    return int(raw) << 20


def download(
    url: str | os.PathLike[str],
    dest_dir: Path,
    *,
    name: str,
    size: int | None = None,
    kind: str | None = None,
    timeout: float = 60.0,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch an http(s) media URL to `dest_dir/name`, atomically, bounded and checked.

    Anything else (a local path, `file:`, `data:`, `ftp:` ..., or a redirect to one) is refused
    without being read. The body may be at most `max_bytes` (default: the environment's
    SORA_WIDGETS_MAX_DOWNLOAD_MB, else 2048 MB) and must arrive within `deadline_s` (default
    DOWNLOAD_DEADLINE_S, 15 minutes); `timeout` bounds each connect and read. With `kind`
    "video" or "image" the first bytes must look like one (a video must also hold a video
    stream) before the file gets its name. A file already there with the expected size (`size`,
    or the server's Content-Length) is kept. Any failure raises GenerationError(kind="download")
    and leaves nothing under the final name, nor a `.part` file.
    """
    if Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    if kind not in (None, "video", "image"):
        raise ValueError(f"kind must be 'video', 'image' or None, got {kind!r}")
    text = os.fspath(url).strip()
    if (problem := url_problem(text)) is not None:
        raise _refused(text, f"it {problem}")
    cap = _max_download_bytes() if max_bytes is None else max_bytes
    dest = Path(dest_dir) / name
    if size is not None and dest.is_file() and dest.stat().st_size == size:
        return dest
    wait = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return _download_http(text, dest, size=size, kind=kind, cap=cap, deadline_s=wait,
                              timeout=min(timeout, wait), transport=transport)
    except OSError as exc:
        raise GenerationError(f"could not save {name} in {dest.parent}: {exc}", kind="download") from exc


def _download_http(url: str, dest: Path, *, size: int | None, kind: str | None, cap: int,
                   deadline_s: float, timeout: float, transport: httpx.BaseTransport | None) -> Path:
    """One GET of `url` into `dest`, unless a complete copy of the announced size is already there."""
    import httpx

    started = time.monotonic()
    try:
        with _http_client(timeout, transport) as client, client.stream("GET", url) as response:
            _check_status(response, url)
            expected = _expected_size(response, url, size, cap)
            if expected is not None and dest.is_file() and dest.stat().st_size == expected:
                return dest
            chunks = _bounded_chunks(response, url, max_bytes=cap, limit_name=MAX_DOWNLOAD_MB_VAR,
                                     started=started, deadline_s=deadline_s)
            _save_checked(chunks, dest, url=url, expected=expected, kind=kind)
    except httpx.HTTPError as exc:
        raise GenerationError(f"downloading {shown_url(url)} failed: {exc}", kind="download") from exc
    return dest


def _expected_size(response: httpx.Response, url: str, size: int | None, cap: int) -> int | None:
    """The file's size as announced (`size`, else Content-Length); refused before reading when
    either is over the cap."""
    length = response.headers.get("content-length", "")
    if response.headers.get("content-encoding", "identity") != "identity" or not length.isdigit():
        length = ""  # compressed on the wire (so not the file's size), or not a number
    announced = int(length) if length else None
    for n in (size, announced):
        if n is not None and n > cap:
            raise _refused(url, f"it is {_megabytes(n)}, over the download limit of "
                                f"{_megabytes(cap)} ({MAX_DOWNLOAD_MB_VAR})")
    return size if size is not None else announced


def _save_checked(chunks: Iterable[bytes], dest: Path, *, url: str, expected: int | None,
                  kind: str | None) -> None:
    """Write `chunks` to a `.part` file beside `dest` and rename it only once every check passed."""
    with part_file(dest) as tmp:
        with open(tmp, "wb") as fh:
            got = _write_sniffed(chunks, fh, url=url, kind=kind)
        if expected is not None and got != expected:
            how = "stopped early" if got < expected else "sent more than announced"
            raise GenerationError(f"downloading {shown_url(url)} {how}: got {got} of {expected} bytes",
                                  kind="download")
        if kind == "video":
            _check_playable(tmp, dest.name, url)
        os.replace(tmp, dest)


def _write_sniffed(chunks: Iterable[bytes], fh: BinaryIO, *, url: str,
                   kind: str | None) -> int:
    """Write the body, checking its first bytes look like `kind` as soon as they have arrived."""
    head, got = b"", 0
    for chunk in chunks:
        fh.write(chunk)
        got += len(chunk)
        if kind is not None and len(head) < _SNIFF_BYTES:
            head += chunk[:_SNIFF_BYTES]
            if len(head) >= _SNIFF_BYTES:
                _check_content(head, kind, url)
    if kind is not None and len(head) < _SNIFF_BYTES:
        _check_content(head, kind, url)
    return got


def _check_content(head: bytes, kind: str, url: str) -> None:
    """Refuse a body whose first bytes are not a video (or an image) as `kind` asks."""
    if (sniff_video(head) if kind == "video" else sniff_image(head)) is None:
        wanted = "a video" if kind == "video" else "an image"
        raise _refused(url, f"it looks like {looks_like(head)}, not {wanted}")


def _check_playable(path: str, name: str, url: str) -> None:
    """Refuse a downloaded "video" that PyAV cannot open or that holds no video stream."""
    try:
        probe_video(path)
    except GenerationError as exc:  # its message names the .part file: name the file asked for
        raise _refused(url, f"it is not a playable video ({str(exc).replace(path, name)})") from exc
