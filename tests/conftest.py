"""Shared test set-up: a clean environment for every test, and one fake fal server per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fakefal import FakeFal

    import sora_widgets as sw
    from sora_widgets import JobRunner


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees a real key or writes runs into the working tree."""
    for name in ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path_factory.mktemp("sora_runs")))


@pytest.fixture
def log(tmp_path: Path) -> sw.History:
    """A fresh history (and media folder) for this test only."""
    import sora_widgets as sw

    return sw.History(tmp_path / "runs" / "history.sqlite")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Where a test's child processes keep their history (a path, not an open History)."""
    return tmp_path / "runs" / "history.sqlite"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A small PNG on disk, as a user's input image."""
    from helpers import png_bytes

    path = tmp_path / "first.png"
    path.write_bytes(png_bytes())
    return path


# -- the fake fal server ----------------------------------------------------------------------
# fal_client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST once, at import, so ONE fake is started for
# the whole session before any test module can import fal_client.

_FAKE_FAL: FakeFal | None = None


def pytest_configure(config: pytest.Config) -> None:
    """Start the session's fake fal server and point fal_client and httpx at it."""
    global _FAKE_FAL
    import os

    from fakefal import FakeFal

    _FAKE_FAL = FakeFal().start()
    os.environ.update(_FAKE_FAL.environment())


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the fake server at the end of the session."""
    if _FAKE_FAL is not None:
        _FAKE_FAL.stop()


@pytest.fixture
def fakefal() -> Iterator[FakeFal]:
    """The session's fake fal server, with jobs, faults and counts reset for this test."""
    assert _FAKE_FAL is not None
    _FAKE_FAL.reset()
    yield _FAKE_FAL
    _FAKE_FAL.reset()


@pytest.fixture
def runner() -> Iterator[JobRunner]:
    """A JobRunner of the test's own (the package's default one is left alone), closed after it."""
    from sora_widgets import JobRunner

    with JobRunner() as made:
        yield made
