"""The `sora-widgets` command: generate, list the history, resume jobs, read schemas, open the lab,
serve a notebook as a page (`app`).

`generate` builds its options from the endpoint's schema (`--prompt`, `--image-url`,
`--duration` ...), so a new endpoint or field needs no change here. Values are passed to the
same validation as the Python API, so a mistake reads the same in both places. Exit codes:
0 done, 1 a generation failed, 2 invalid input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, SoraWidgetsError, ValidationError
from .._html import runs_text
from .._version import __version__
from ..records import JobStatus
from ..schema.documents import (
    DEFAULT_ENDPOINT,
    EndpointSchema,
    bundled_endpoints,
    load_schema,
    schema_for,
)
from ..schema.fields import Field
from .format import PrintableStream, Progress, generation_summary, history_table, schema_listing

if TYPE_CHECKING:
    from ..jobs.job import Job
    from ..records import Generation

__all__ = ["build_parser", "main"]

EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 1, 2, 130
#: option names the command itself uses; a field with one of these names gets `--field-<name>`
_OWN_OPTIONS = {"endpoint", "backend", "dry_run", "help"}
_DESCRIPTION = """\
Sora 2 image-to-video on fal.ai from the command line. With FAL_KEY set, runs go to fal.ai;
without it, an offline preview renders a labelled video from your image on this machine.
Every run is kept in ./sora_runs (set SORA_WIDGETS_HOME to move it)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with `argv` (default: sys.argv[1:]) and return its exit code.

    Everything it prints goes through `printable`, since rows, logs and errors can hold text from
    a server; bad input of any kind ends in one message on stderr and exit code 2, not a traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    with redirect_stdout(PrintableStream(sys.stdout)), redirect_stderr(PrintableStream(sys.stderr)):
        try:
            return _run(args)
        except GenerationError as exc:  # the job was sent and failed: not the input's fault
            return _report(str(exc), EXIT_FAILED)
        except (SoraWidgetsError, ValueError) as exc:  # bad arguments, endpoint, document, history
            return _report(str(exc), EXIT_INVALID)
        except OSError as exc:  # a file or folder it was pointed at cannot be read or written
            where = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
            return _report(where, EXIT_INVALID)
        except KeyboardInterrupt:
            print("\nStopped following. Jobs that were sent keep running; "
                  "`sora-widgets resume` picks them up.", file=sys.stderr)
            return EXIT_INTERRUPTED


def _run(args: list[str]) -> int:
    """Parse `args` and run the subcommand; argparse's own usage errors return 2."""
    schema = schema_for(_endpoint_option(args)) if _subcommand(args) == "generate" else None
    parser = build_parser(schema)
    try:
        options, extra = parser.parse_known_args(args)
        if extra and not hasattr(options, "frontend"):  # only lab and app pass options on
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version or a usage error: return, do not exit
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    if "--" in extra:  # `sora-widgets lab -- --port 9999`: the rest is the server's
        extra.remove("--")
    options.extra = extra
    return int(options.run(options, schema))


def _report(message: str, code: int) -> int:
    """A problem as one message on stderr, in argparse's form; returns the exit `code`."""
    print(f"sora-widgets: error: {message}", file=sys.stderr)
    return code


def build_parser(schema: EndpointSchema | None = None) -> argparse.ArgumentParser:
    """The parser; `generate` gets one option per field of `schema` (default: the default
    endpoint's)."""
    parser = argparse.ArgumentParser(
        prog="sora-widgets", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.set_defaults(run=lambda _options, _schema: _print_help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    gen = commands.add_parser(
        "generate", help="make one video and print where it is",
        description="Make one video. Options come from the endpoint's schema; see "
                    "`sora-widgets schema ENDPOINT` for the fields in full.")
    gen.add_argument("--endpoint", default=DEFAULT_ENDPOINT,
                     help=f"fal endpoint id or an OpenAPI .json file "
                          f"(default: {DEFAULT_ENDPOINT})")
    gen.add_argument("--backend", choices=["fal", "preview"],
                     help="where to run (default: fal when FAL_KEY is set, else the offline "
                          "preview)")
    gen.add_argument("--dry-run", action="store_true",
                     help="print the JSON that would be sent and its estimated cost; send nothing")
    fields = gen.add_argument_group("fields of the endpoint")
    for f in (schema or load_schema(DEFAULT_ENDPOINT)).fields:
        _add_field_option(fields, f)
    gen.set_defaults(run=_run_generate)

    hist = commands.add_parser("history", help="a table of recent runs; export them",
                               description="Show recent runs, newest first.")
    hist.add_argument("--limit", type=_count, default=20,
                      help="how many runs to show (default: 20)")
    hist.add_argument("--status", choices=[status.value for status in JobStatus],
                      help="only runs with this status")
    hist.add_argument("--export", metavar="FILE",
                      help="write every run to FILE (.csv, .jsonl or .parquet, by its suffix)")
    hist.set_defaults(run=_run_history)

    res = commands.add_parser("resume", help="follow jobs that have not finished",
                              description="Follow every run that was sent but not seen to finish "
                                          "(e.g. after a crash or Ctrl-C) until it ends.")
    res.add_argument("--backend", choices=["fal", "preview"],
                     help="follow with this backend (default: the one each run was sent with)")
    res.set_defaults(run=_run_resume)

    sch = commands.add_parser("schema", help="the fields of an endpoint",
                              description="List an endpoint's fields: type, allowed values, "
                                          "defaults and which are required.")
    sch.add_argument("endpoint", nargs="?", default=DEFAULT_ENDPOINT,
                     help=f"endpoint id or an OpenAPI .json file (default: {DEFAULT_ENDPOINT}); "
                          f"bundled: {', '.join(bundled_endpoints())}")
    sch.add_argument("--json", action="store_true", help="print the fields as JSON")
    sch.set_defaults(run=_run_schema)

    ends = commands.add_parser("endpoints", help="fal's video endpoints and their status",
                               description="List endpoints: bundled, cached and (with a key) fal's "
                                           "own, each with its status (active, deprecated, retired, "
                                           "unknown).")
    ends.add_argument("search", nargs="?", help="words the endpoint must mention")
    ends.add_argument("--category", default="image-to-video",
                      help="fal's category (default: image-to-video; 'all' for every one)")
    ends.set_defaults(run=_run_endpoints)

    lab = commands.add_parser(
        "lab", help="open the quickstart notebook in JupyterLab", allow_abbrev=False,
        description="Start JupyterLab on the quickstart notebook and print its address. Other "
                    "options (--port 9999, --no-browser ...) are passed on to JupyterLab.")
    _add_server_options(lab, "JupyterLab", "the quickstart")
    lab.set_defaults(run=_run_server, frontend="lab", default_notebook="quickstart.ipynb")

    app = commands.add_parser(
        "app", help="serve the teaching notebook as a page (Voila), for a class",
        allow_abbrev=False,
        description="Serve the teaching notebook as a page with its outputs and widgets but no "
                    "code (Voila), and print its address. Other options (--port 9999, "
                    "--Voila.ip=0.0.0.0 ...) are passed on to Voila.")
    _add_server_options(app, "Voila", "the teaching notebook")
    app.set_defaults(run=_run_server, frontend="app", default_notebook="teaching.ipynb")
    return parser


def _count(text: str) -> int:
    """A whole number >= 1, for `--limit`."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {text!r})")
    return int(text)


def _print_help(parser: argparse.ArgumentParser) -> int:
    """`sora-widgets` alone: show what it can do."""
    parser.print_help()
    return 0


# --- generate ---------------------------------------------------------------------------------


def _subcommand(args: Sequence[str]) -> str | None:
    """The first word that is not an option: the subcommand, if any."""
    return next((a for a in args if not a.startswith("-")), None)


def _endpoint_option(args: Sequence[str]) -> str:
    """The `--endpoint` value, read before the full parser exists since it decides the options."""
    peek = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    peek.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    endpoint: str = peek.parse_known_args(args)[0].endpoint
    return endpoint


def _dest(f: Field) -> str:
    return f"field:{f.name}"


def _add_field_option(group: argparse._ArgumentGroup, f: Field) -> None:
    """One option for one schema field; values stay text and are checked by schema validation."""
    name = f"field-{f.name}" if f.name in _OWN_OPTIONS else f.name
    option = "--" + name.replace("_", "-")
    facts = [f.description.rstrip(".")] if f.description else []
    if f.kind not in ("enum", "boolean"):
        facts.append(f.allowed())
    if f.has_default:
        facts.append(f"default: {json.dumps(f.default)}")
    if f.required:
        facts.append("required")
    if f.kind == "image":
        facts.append("a URL or a local file path")
    help_text = "; ".join(facts).replace("%", "%%")
    if f.type == "boolean":
        group.add_argument(option, dest=_dest(f), action=argparse.BooleanOptionalAction,
                           default=None, help=help_text)
    elif f.type == "array":
        choices = "{" + ",".join(str(v) for v in f.item_enum) + "}" if f.item_enum else "VALUE"
        group.add_argument(option, dest=_dest(f), action="append", metavar=choices,
                           help=help_text + "; repeat the option for each item")
    else:
        metavar = "{" + ",".join(str(v) for v in f.enum) + "}" if f.enum else name.upper()
        group.add_argument(option, dest=_dest(f), metavar=metavar, help=help_text)


def _field_values(options: argparse.Namespace, schema: EndpointSchema) -> dict[str, Any]:
    """The fields given on the command line; objects are read as JSON."""
    values: dict[str, Any] = {}
    problems = []
    for f in schema.fields:
        value = getattr(options, _dest(f), None)
        if value is None:
            continue
        if f.type in ("object", "any"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                if f.type == "object":
                    problems.append((f.name, f"must be a JSON object ({exc.msg})"))
                    continue
        values[f.name] = value
    if problems:
        raise ValidationError(problems, endpoint_id=schema.endpoint_id)
    return values


def _run_generate(options: argparse.Namespace, schema: EndpointSchema) -> int:
    from ..backends import resolve_backend
    from ..history.store import History
    from ..jobs.generation import submit
    from ..pricing import estimate_cost, format_usd

    fields = _field_values(options, schema)
    arguments = schema.validate(fields)  # before anything is recorded; submit checks images
    if options.dry_run:
        print(json.dumps(arguments, indent=2))
        print(f"estimated cost: {format_usd(estimate_cost(schema, arguments))}",
              file=sys.stderr)
        return 0
    from ..schema.endpoints import endpoint_status

    log = History()
    backend = resolve_backend(options.backend, history=log)
    print(backend.describe(), file=sys.stderr)
    status = endpoint_status(schema.endpoint_id)
    if status.status != "active":
        print(f"endpoint status: {status}", file=sys.stderr)
    progress = Progress()
    job = submit(schema=schema, arguments=fields, backend=backend, history=log,
                 on_event=progress)
    gen = _follow(job, progress)
    print(generation_summary(gen))
    return 0


def _follow(job: Job, progress: Progress) -> Generation:
    """Wait for `job`, redrawing the progress line; returns its Generation or raises."""
    while True:
        try:
            return job.result(timeout=0.5)
        except TimeoutError:
            progress.tick(job)


# --- history, resume, schema, lab ---------------------------------------------------------------


def _run_history(options: argparse.Namespace, _schema: None) -> int:
    from ..history.store import History

    log = History()
    filters = {"status": options.status} if options.status else {}
    if options.export is not None:
        written = log.export(options.export, **filters)
        print(f"wrote {runs_text(log.count(**filters))} to {written}", file=sys.stderr)
        return 0
    rows = log.find(limit=options.limit, **filters)
    if not rows:
        print(f"No runs yet in {log.path}.", file=sys.stderr)
        return 0
    print(history_table(rows))
    return 0


def _run_resume(options: argparse.Namespace, _schema: None) -> int:
    from ..history.store import History
    from ..jobs.generation import resume

    log = History()
    unfinished = [row["id"] for row in log.unfinished()]
    if not unfinished:
        print(f"Nothing to resume: every run in {log.path} has finished.", file=sys.stderr)
        return 0
    jobs: list[Job] = resume(log, backend=options.backend)
    taken = {job.history_id for job in jobs}
    left = [log.get(id) for id in unfinished if id not in taken]
    unknown = sum(row["status"] is JobStatus.UNKNOWN for row in left)
    if unknown:
        print(f"{runs_text(unknown)} stopped while being sent, before fal answered: they may have "
              "reached fal, so they are recorded as unknown and not sent again; check your fal "
              "dashboard.", file=sys.stderr)
    if len(left) > unknown:
        print(f"{runs_text(len(left) - unknown)} followed by another running process: left to it.",
              file=sys.stderr)
    failed = 0
    for job in jobs:
        progress = Progress(label=f"run {job.history_id}: ")
        job.on_event(progress)
        try:
            print(generation_summary(_follow(job, progress)))
        except GenerationError as exc:
            print(f"run {job.history_id} failed: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_FAILED if failed else 0


def _run_endpoints(options: argparse.Namespace, _schema: None) -> int:
    from ..schema.endpoints import find_endpoints

    category = None if options.category == "all" else options.category
    for info in find_endpoints(options.search, category=category):
        print(f"{info.endpoint_id}\t{info.status}\t{info.origin}\t{info.display_name}")
    return 0


def _run_schema(options: argparse.Namespace, _schema: None) -> int:
    schema = schema_for(options.endpoint)
    if options.json:
        rows = [{"name": f.name, "type": f.type, "required": f.required,
                 "default": f.default if f.has_default else None, "enum": f.enum,
                 "allowed": f.allowed(), "description": f.description} for f in schema.fields]
        print(json.dumps({"endpoint_id": schema.endpoint_id, "fields": rows}, indent=2))
    else:
        print(schema_listing(schema))
    return 0


def _add_server_options(command: argparse.ArgumentParser, server: str, default: str) -> None:
    command.add_argument("--notebook", type=Path,
                         help=f"open this notebook instead of {default} (or name it alone: "
                              "NOTEBOOK.ipynb)")
    command.add_argument("--dry-run", action="store_true",
                         help=f"print the command that would start {server}, start nothing")


def _run_server(options: argparse.Namespace, _schema: None) -> int:
    """`lab` and `app`: start JupyterLab or Voila on a notebook, in place of this process."""
    from .jupyter import example_notebook, server_command

    named = [arg for arg in options.extra if arg.endswith(".ipynb") and not arg.startswith("-")]
    if options.notebook is None and len(named) == 1:  # `sora-widgets app mine.ipynb`
        options.notebook = Path(named[0])
        options.extra.remove(named[0])
    notebook = options.notebook or example_notebook(options.default_notebook)
    if notebook is None or not notebook.is_file():
        return _report(f"no notebook at {notebook or 'notebooks/' + options.default_notebook}; "
                       "pass --notebook PATH", EXIT_INVALID)
    command = server_command(options.frontend, notebook, options.extra)
    if options.dry_run:
        print(command.shell())
        return 0
    server, module, extra = _SERVERS[options.frontend]
    if importlib.util.find_spec(module) is None:
        return _report(f"{server} is not installed here; pip install 'sora-widgets[{extra}]'",
                       EXIT_FAILED)
    print(f"Starting {server} on {notebook}: open the http://...{command.url_path} address it "
          "prints below (Ctrl-C stops it).", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command.argv, command.env)  # the server handles Ctrl-C itself


#: front end -> (its name, the module that runs it, the extra that installs it)
_SERVERS = {"lab": ("JupyterLab", "jupyterlab", "lab"), "app": ("Voila", "voila", "app")}

