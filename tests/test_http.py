"""The bounded HTTP call: an endless trickle and an oversized body end in TooMuch, not a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sora_widgets._http import TooMuch, bounded_request


class _Trickle(BaseHTTPRequestHandler):
    """Sends a byte every 20 ms for ever (until the client hangs up)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:
            return


@pytest.fixture
def trickle() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_an_endless_trickle_ends_at_the_deadline(trickle: str) -> None:
    with pytest.raises(TooMuch, match="longer than 0.5 s"):
        bounded_request("GET", trickle, timeout_s=2.0, deadline_s=0.5)


def test_a_body_over_the_cap_ends_at_the_cap(trickle: str) -> None:
    with pytest.raises(TooMuch, match="more than 0 MB"):
        bounded_request("GET", trickle, timeout_s=2.0, deadline_s=30, max_bytes=10)
