"""The `sora-widgets` command: every subcommand in-process, and the installed script offline."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fakefal import content_policy_error

import sora_widgets as sw
from sora_widgets.cli.commands import _follow, main
from sora_widgets.cli.format import PrintableStream, Progress, printable
from sora_widgets.records import JobEvent

EXAMPLE = Path(__file__).resolve().parent.parent / "notebooks" / "example.png"
SCRIPT = Path(sys.executable).with_name("sora-widgets")
SECRET = "test-key-id:test-key-secret-never-printed"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command in a fresh interpreter, as a user runs it, with this test's environment; its
    output decoded as is (text mode would turn a carriage return into a newline)."""
    done = subprocess.run([sys.executable, "-m", "sora_widgets.cli", *argv], capture_output=True,
                          env=cli_env(**env), timeout=120)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def cli_env(**env: str) -> dict[str, str]:
    """This test's environment plus `env`, importing the sora_widgets under test from any folder."""
    return {**os.environ, "PYTHONPATH": str(Path(sw.__file__).parents[1]), **env}


def generate(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run(capsys, "generate", "--prompt", "a slow zoom out over green hills",
               "--image-url", str(EXAMPLE), "--duration", "4", *extra)


def home() -> Path:
    return Path(os.environ["SORA_WIDGETS_HOME"])


# --- help and version ---------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"sora-widgets {sw.__version__}"


@pytest.mark.parametrize("command", [[], ["generate"], ["history"], ["resume"], ["schema"],
                                     ["lab"], ["app"]])
def test_help_everywhere(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: sora-widgets")


def test_no_command_shows_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    for command in ("generate", "history", "resume", "schema", "lab", "app"):
        assert command in out


@pytest.mark.parametrize("endpoint", sw.bundled_endpoints())
def test_generate_options_come_from_the_schema(capsys: pytest.CaptureFixture[str],
                                               endpoint: str) -> None:
    code, out, _ = run(capsys, "generate", "--endpoint", endpoint, "--help")
    assert code == 0
    schema = sw.load_schema(endpoint)
    for field in schema.fields:
        assert "--" + field.name.replace("_", "-") in out
        if field.enum:
            assert "{" + ",".join(str(v) for v in field.enum) + "}" in out
    if "image_url" not in schema:
        assert "--image-url" not in out


def test_an_unseen_endpoint_document_gives_its_own_options(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = {"openapi": "3.0.4", "info": {"title": "Toy", "x-fal-metadata": {"endpointId": "me/toy"}},
           "paths": {"/me/toy": {"post": {"requestBody": {"content": {"application/json": {
               "schema": {"type": "object", "required": ["seed"], "properties": {
                   "seed": {"type": "integer", "minimum": 0, "maximum": 9},
                   "style": {"enum": ["ink", "oil"], "default": "ink"},
                   "loop": {"type": "boolean", "default": False}}}}}}}}}}
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(doc))
    code, out, _ = run(capsys, "generate", "--endpoint", str(path), "--help")
    assert code == 0
    assert "--seed" in out and "{ink,oil}" in out and "--no-loop" in out
    assert "--prompt" not in out
    code, out, _ = run(capsys, "generate", "--endpoint", str(path), "--seed", "3", "--loop",
                       "--dry-run")
    assert code == 0 and json.loads(out) == {"seed": 3, "style": "ink", "loop": True}


# --- generate -----------------------------------------------------------------------------------


def test_generate_offline_prints_where_the_video_is(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = generate(capsys)
    assert code == 0, err
    video = Path(out.splitlines()[0].removeprefix("video: "))
    assert video.is_file() and video.stat().st_size > 1000
    assert video.is_relative_to(home())
    assert "Offline preview" in err
    assert "queued" in err and "completed" in err and " · " in err  # the progress line
    [record] = sw.History().records()
    assert record["status"] == "completed" and record["arguments"]["duration"] == 4


def test_invalid_input_reads_like_the_python_api(capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"prompt": " ", "duration": "5", "model": "sora-3"}
    with pytest.raises(sw.ValidationError) as expected:
        sw.load_schema().validate(bad)
    code, out, err = run(capsys, "generate", "--prompt", " ", "--duration", "5",
                         "--model", "sora-3")
    assert code == 2 and out == ""
    assert str(expected.value) in err
    assert 'did you mean' not in err and "image_url: is required" in err
    assert not (home() / "history.sqlite").exists()  # nothing recorded, nothing sent


def test_missing_image_file_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "generate", "--prompt", "x", "--image-url", "no-such-file.png")
    assert code == 2 and "image_url" in err and "does not exist" in err
    assert sw.History().records() == []


def test_dry_run_shows_the_exact_request_and_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "generate", "--prompt", "p", "--image-url",
                         "https://example.com/a.png", "--duration", "8", "--no-delete-video",
                         "--character-ids", "alice", "--character-ids", "bob", "--dry-run")
    assert code == 0
    sent = json.loads(out)
    assert sent == sw.load_schema().validate({
        "prompt": "p", "image_url": "https://example.com/a.png", "duration": 8,
        "delete_video": False, "character_ids": ["alice", "bob"]})
    assert "estimated cost: $0.80" in err
    assert not (home() / "history.sqlite").exists()


def test_generation_failure_exits_1_and_never_prints_the_key(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fakefal) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.configure(queue_s=0.2, run_s=0.3, error=content_policy_error())
    code, out, err = run(capsys, "generate", "--prompt", "x", "--image-url",
                         "https://example.com/a.png")
    assert code == 1 and out == ""
    assert "error:" in err and "FAL_KEY" in err  # where the key came from, never the key
    assert SECRET not in err and "test-key-secret" not in err


def test_generate_through_fal_shows_the_queue_position(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fakefal) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.configure(queue_s=1.0, run_s=0.5, queue_position=2)
    code, out, err = run(capsys, "generate", "--prompt", "x", "--image-url",
                         "https://example.com/a.png")
    assert code == 0, err
    assert "queued position" in err and "completed" in err
    assert out.startswith("video: ") and Path(out.split()[1]).is_file()
    assert SECRET not in out + err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal() -> None:
    screen = _Terminal()
    progress = Progress(screen)
    job = sw.submit(prompt="progress", image_url=str(EXAMPLE), on_event=progress)
    _follow(job, progress)
    text = screen.getvalue()
    assert "\rqueued position 0 · " in text and "\rrunning · " in text
    assert "log: " in text and text.endswith("\n") and "completed · " in text.splitlines()[-1]


# --- history, resume, schema, lab -----------------------------------------------------------------


def test_history_table_limit_and_export(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "history")
    assert code == 0 and out == "" and "No runs yet" in err
    assert generate(capsys)[0] == 0
    assert run(capsys, "generate", "--prompt", "second run", "--image-url", str(EXAMPLE))[0] == 0
    code, out, _ = run(capsys, "history")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["id", "created", "status"]
    assert len(lines) == 4 and "second run" in lines[2] and "completed" in lines[3]
    code, out, _ = run(capsys, "history", "--limit", "1")
    assert len(out.splitlines()) == 3 and "second run" in out
    for suffix, read in ((".csv", pd.read_csv), (".jsonl", lambda p: pd.read_json(p, lines=True))):
        target = tmp_path / f"runs{suffix}"
        code, _, err = run(capsys, "history", "--export", str(target))
        assert code == 0 and "wrote 2 runs" in err
        assert len(read(target)) == 2


def test_history_limit_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "history", "--limit", "0")
    assert code == 2 and "--limit: must be a whole number >= 1" in err


def test_history_export_to_an_unknown_format_is_refused(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    code, _, err = run(capsys, "history", "--export", str(tmp_path / "runs.xlsx"))
    assert code in (1, 2) and "error:" in err and ".xlsx" in err


def test_resume_with_nothing_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "resume")
    assert code == 0 and "Nothing to resume" in err


KILLED_CLI = """
import os, sys, time
import sora_widgets as sw
job = sw.submit(prompt="restart me", image_url=sys.argv[1], duration=8, backend="preview")
while sw.History().get(job.history_id)["request_id"] is None:
    time.sleep(0.01)
os._exit(0)  # the process dies while its job is queued
"""


def test_resume_follows_a_job_left_by_a_dead_process(capsys: pytest.CaptureFixture[str]) -> None:
    subprocess.run([sys.executable, "-c", KILLED_CLI, str(EXAMPLE)], check=True, timeout=120)
    # a row an older release left while sending it (no owner recorded): it may have reached fal
    maybe_sent = sw.History().start("fal-ai/sora-2/image-to-video", "fal",
                                    {"prompt": "x", "image_url": "https://example.com/u.png"})
    code, out, err = run(capsys, "resume")
    assert code == 0, err
    assert "1 run stopped while being sent" in err and "not sent again" in err
    assert out.startswith("video: ") and Path(out.split()[1]).is_file()
    statuses = {r["id"]: r["status"] for r in sw.History().records()}
    assert statuses[maybe_sent] == "unknown" and sorted(statuses.values()) == ["completed", "unknown"]


def test_schema_lists_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", "fal-ai/sora-2/image-to-video")
    assert code == 0
    schema = sw.load_schema("fal-ai/sora-2/image-to-video")
    for field in schema.fields:
        line = next(row for row in out.splitlines() if row.split() and row.split()[0] == field.name)
        assert field.type in line and field.allowed() in line
        assert ("*" in line.split()[1]) == field.required
    assert 'one of 4, 8, 12, 16, 20' in out and "sora-2-2025-10-06" in out


def test_schema_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", "fal-ai/sora-2/text-to-video", "--json")
    data = json.loads(out)
    assert code == 0 and data["endpoint_id"] == "fal-ai/sora-2/text-to-video"
    duration = next(f for f in data["fields"] if f["name"] == "duration")
    assert duration["enum"] == [4, 8, 12, 16, 20] and duration["default"] == 4


def test_unknown_endpoint_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "schema", "fal-ai/sora-2/image-to-vid")
    assert code == 2 and out == ""
    assert 'did you mean "fal-ai/sora-2/image-to-video"' in err
    code, _, err = run(capsys, "generate", "--endpoint", "fal-ai/nope", "--prompt", "x")
    assert code == 2 and "No bundled schema" in err


def test_lab_dry_run_prints_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lab", "--dry-run")
    assert code == 0
    words = out.split()
    assert words[0].startswith("JUPYTER_CONFIG_PATH=")
    assert words[1:4] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={EXAMPLE.parent}" in words
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in words


def test_lab_with_a_missing_notebook(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "lab", "--notebook", str(tmp_path / "none.ipynb"), "--dry-run")
    assert code == 2 and "no notebook" in err


# --- text from a server or the history cannot drive the terminal --------------------------------

#: a hidden hyperlink (OSC 8), clear-screen (CSI), a carriage return and a C1 CSI
HOSTILE = "\x1b]8;;http://evil\x07click\x1b]8;;\x07 \x1b[2Jhere\r\x9b31m"
CONTROLS = ("\x1b", "\x9b", "\r", "\x07")


def assert_printable(text: str) -> None:
    assert not [c for c in CONTROLS if c in text], repr(text)
    assert "click here" in text


def test_printable_keeps_text_and_layout_only() -> None:
    assert printable(HOSTILE) == "click here"
    assert printable("a\tb\nc · ü\x00\x7f\x85\x1b(B\x1b]0;title\x1b\\d") == "a\tb\nc · üd"


def test_history_rows_cannot_drive_the_terminal() -> None:
    log = sw.History()
    log.start("fal-ai/sora-2/image-to-video", "preview", {"prompt": HOSTILE, "model": HOSTILE})
    done = cli("history")
    assert done.returncode == 0, done.stderr
    assert_printable(done.stdout)


def test_server_logs_and_errors_cannot_drive_the_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fakefal) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.configure(queue_s=0.1, run_s=0.3, logs=[HOSTILE], error=(500, {"detail": HOSTILE}))
    code, out, err = run(capsys, "generate", "--prompt", "x", "--image-url",
                         "https://example.com/a.png")
    assert code == 1 and out == ""
    assert "log: click here\n" in err
    assert_printable(err)
    assert_printable(err.split("sora-widgets: error:")[1])  # the message holds the server's text


def test_endpoint_names_from_fal_cannot_drive_the_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fakefal) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.add_model("someone/hostile-video", display_name=HOSTILE)
    code, out, _ = run(capsys, "endpoints", "hostile")
    assert code == 0 and "someone/hostile-video" in out
    assert_printable(out)


def test_progress_cleans_what_it_is_given_and_keeps_its_own_redraw() -> None:
    screen = _Terminal()
    progress = Progress(PrintableStream(screen), label=HOSTILE + ": ")
    progress(SimpleNamespace(elapsed_s=1.0), JobEvent("running", logs=(HOSTILE,)))
    text = screen.getvalue()
    assert text == "  log: click here\n\rclick here: running · 1s"  # redrawn with its own \r


# --- bad input is one message and exit code 2, never a traceback -----------------------------------


def _not_a_history(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text)")


@pytest.mark.parametrize(("argv", "home_file", "expected"), [
    (["history", "--limit", "many"], None, "--limit: must be a whole number"),
    (["generate", "--prompt", "x", "--duration", "7"], None, "duration: must be one of"),
    (["generate", "--prompt", "x", "--image-url", "no-such.png"], None, "does not exist"),
    (["schema", "fal-ai/sora-2/no-such-endpoint"], None, "No bundled schema"),
    (["generate", "--endpoint", "missing.json", "--prompt", "x"], None, "No schema file at missing.json"),
    (["schema", "broken.json"], None, "Expecting"),  # a document that is not JSON: a ValueError
    (["history", "--export", "runs.xlsx"], None, ".xlsx"),
    (["history", "--export", "a-file/runs.csv"], None, "a-file"),
    (["history"], b"not a database", "could not be opened as a history"),
    (["history"], _not_a_history, "not a sora_widgets history"),
    (["resume"], b"not a database", "could not be opened as a history"),
    (["lab", "--notebook", "missing.ipynb", "--dry-run"], None, "no notebook at missing.ipynb"),
])
def test_bad_input_is_one_message_and_exit_code_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str],
        home_file: bytes | Callable[[Path], None] | None, expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.json").write_text('{"openapi": "3.0.4",')
    (tmp_path / "a-file").write_text("")
    if isinstance(home_file, bytes):
        (home() / "history.sqlite").write_bytes(home_file)
    elif home_file is not None:
        home_file(home() / "history.sqlite")
    done = cli(*argv)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert re.search(r"^sora-widgets( \w+)?: error: ", done.stderr, re.MULTILINE), done.stderr
    assert expected in done.stderr


def test_a_failed_generation_exits_1_without_a_traceback(fakefal) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.2, error=content_policy_error())
    done = cli("generate", "--prompt", "x", "--image-url", "https://example.com/a.png",
               FAL_KEY=SECRET)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "sora-widgets: error: " in done.stderr and "content" in done.stderr


def test_ctrl_c_exits_130_without_a_traceback(fakefal) -> None:
    fakefal.configure(queue_s=60, run_s=1)
    command = subprocess.Popen(
        [sys.executable, "-m", "sora_widgets.cli", "generate", "--prompt", "x", "--image-url",
         "https://example.com/a.png"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(FAL_KEY=SECRET))
    assert command.stderr is not None
    seen = ""
    try:
        while "queued" not in seen:
            line = command.stderr.readline()
            assert line, seen
            seen += line
        command.send_signal(signal.SIGINT)
        _, rest = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 130, seen + rest
    assert "Traceback" not in rest and "sora-widgets resume" in rest


# --- the installed script -----------------------------------------------------------------------


def test_installed_script_generates_offline(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_KEY")}
    env["SORA_WIDGETS_HOME"] = str(tmp_path / "runs")
    done = subprocess.run([str(SCRIPT), "generate", "--prompt", "pan left across the hills",
                           "--image-url", str(EXAMPLE)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr
    video = Path(done.stdout.splitlines()[0].removeprefix("video: "))
    assert video.is_file() and video.is_relative_to(tmp_path / "runs")
    listed = subprocess.run([str(SCRIPT), "history"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert listed.returncode == 0 and "pan left across the hills" in listed.stdout


def test_installed_script_exit_code_for_invalid_input(tmp_path: Path) -> None:
    env = {**os.environ, "FAL_KEY": SECRET, "SORA_WIDGETS_HOME": str(tmp_path)}
    done = subprocess.run([str(SCRIPT), "generate", "--duration", "7"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "duration: must be one of 4, 8, 12, 16, 20 (got 7)" in done.stderr
    assert SECRET not in done.stdout + done.stderr
