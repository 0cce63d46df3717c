"""``audit verify``, ``audit show`` and ``audit export``.

``verify`` and ``show`` read a log file (``FILE``) or the Postgres store (``--postgres-env VAR``,
the environment variable holding the DSN: a DSN carries a password, so it is never an
argument); ``export`` writes the Postgres store to a file that ``verify`` and ``show`` accept.

Only argparse is imported at module level: the audit package (pydantic, OpenTelemetry) loads
when a command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from supervisor.audit import VerifyResult


def verify_command(path: Path, out: TextIO | None = None) -> int:
    """Verify the log at ``path``; print the outcome; 0 if intact, 1 otherwise."""
    from supervisor.audit import verify

    return _report(verify(path), str(path), out)


def verify_postgres_command(dsn_env: str, out: TextIO | None = None) -> int:
    """Verify the Postgres store whose DSN is in ``$dsn_env``; print the outcome; 0 if intact,
    1 otherwise. Raises :class:`ConfigError` if the variable is unset or the server cannot be
    reached."""
    from supervisor.audit import verify_postgres
    from supervisor.audit._postgres import describe_dsn

    dsn = _dsn(dsn_env)
    return _report(verify_postgres(dsn), describe_dsn(dsn), out)


def _report(result: VerifyResult, where: str, out: TextIO | None) -> int:
    stream = out if out is not None else sys.stdout
    if result.ok:
        print(f"OK: {result.records} records, {result.reason}", file=stream)
        return 0
    if result.first_bad_seq is not None:
        where = f"record {result.first_bad_seq}"
    print(
        f"FAILED: {where}: {result.reason} ({result.records} records verified before it)",
        file=stream,
    )
    return 1


def show_command(path: Path, incident_id: str | None = None, out: TextIO | None = None) -> int:
    """Print the timeline of the log at ``path`` (one incident's if given); 0, or 1 if the log
    cannot be read. Reading does not verify: run ``audit verify`` for that."""
    from supervisor.audit import render_timeline
    from supervisor.audit._verify import ChainError, ChainState

    stream = out if out is not None else sys.stdout
    chain = ChainState()
    records = []
    try:
        with path.open("rb") as f:
            for raw in f:
                records.append(chain.accept(raw))
    except FileNotFoundError:
        print(f"FAILED: no audit log at {str(path)!r}", file=stream)
        return 1
    except ChainError as exc:
        stream.write(render_timeline(records, incident_id))
        print(f"FAILED: stopped at record {exc.position}: {exc.reason}", file=stream)
        return 1
    stream.write(render_timeline(records, incident_id))
    return 0


def show_postgres_command(
    dsn_env: str, incident_id: str | None = None, out: TextIO | None = None
) -> int:
    """Print the timeline of the Postgres store whose DSN is in ``$dsn_env``, as
    :func:`show_command` does for a file; 0, or 1 if a record breaks the chain. Raises
    :class:`ConfigError` if the variable is unset or the server cannot be reached."""
    from supervisor.audit import render_timeline
    from supervisor.audit._postgres import read_postgres

    stream = out if out is not None else sys.stdout
    records, broken = read_postgres(_dsn(dsn_env))
    stream.write(render_timeline(records, incident_id))
    if broken is not None:
        print(f"FAILED: stopped at record {broken.position}: {broken.reason}", file=stream)
        return 1
    return 0


def export_command(dsn_env: str, path: Path, out: TextIO | None = None) -> int:
    """Write the Postgres store whose DSN is in ``$dsn_env`` to ``path`` (and its head file);
    0. Raises :class:`ConfigError` if the variable is unset, the server cannot be reached or
    the file cannot be written."""
    from supervisor._errors import ConfigError
    from supervisor.audit import export_postgres
    from supervisor.audit._verify import head_path

    stream = out if out is not None else sys.stdout
    try:
        count = export_postgres(_dsn(dsn_env), path)
    except OSError as err:
        raise ConfigError(f"cannot write the export to {str(path)!r}: {err}") from err
    print(
        f"exported {count} records to {str(path)!r} (head: {str(head_path(path))!r}); "
        f"check it with `mlops-supervisor audit verify {path}`",
        file=stream,
    )
    return 0


def _dsn(env: str) -> str:
    from supervisor._errors import ConfigError

    dsn = os.environ.get(env, "")
    if not dsn:
        raise ConfigError(
            f"the environment variable {env!r} is not set (or empty); set it to the audit "
            "store's Postgres DSN (postgresql://user:password@host:port/database)"
        )
    return dsn


def _run_verify(args: argparse.Namespace) -> int:
    if args.postgres_env:
        return verify_postgres_command(args.postgres_env)
    return verify_command(args.file)


def _run_show(args: argparse.Namespace) -> int:
    if args.postgres_env:
        return show_postgres_command(args.postgres_env, args.incident)
    return show_command(args.file, args.incident)


def repair_command(path: Path, out: TextIO | None = None) -> int:
    """Cut a torn last line off the log at ``path``; 0 if the log is (now) intact, 1 if it is
    broken in a way repair does not touch."""
    from supervisor import SupervisorError
    from supervisor.audit import repair

    stream = out if out is not None else sys.stdout
    try:
        result = repair(path)
    except SupervisorError as err:
        print(f"NOT REPAIRED: {err}", file=sys.stderr)
        return 1
    except FileNotFoundError:
        print(f"NOT REPAIRED: no audit log at {str(path)!r}", file=sys.stderr)
        return 1
    if result.cut_bytes == 0:
        print(f"OK: nothing to repair; {result.kept} records, chain intact", file=stream)
    else:
        print(
            f"REPAIRED: cut a torn last line of {result.cut_bytes} bytes (saved to "
            f"{result.evidence}); {result.kept} complete records kept, chain verified",
            file=stream,
        )
    return 0


def _run_repair(args: argparse.Namespace) -> int:
    return repair_command(args.file)


def _run_export(args: argparse.Namespace) -> int:
    return export_command(args.postgres_env, args.out)


def _add_source(parser: argparse.ArgumentParser) -> None:
    """``FILE`` or ``--postgres-env VAR``, exactly one."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", type=Path, nargs="?", metavar="FILE", help="the audit log (JSONL)")
    source.add_argument(
        "--postgres-env",
        metavar="VAR",
        help="read the Postgres audit store instead; VAR is the environment variable that "
        "holds its DSN (e.g. MLOPS_SUPERVISOR_PG_DSN)",
    )


def add_audit_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``audit verify``, ``audit show`` and ``audit export``.

    Each sets ``handler(args) -> int`` (the exit code) on the namespace, also as ``func``.
    """
    audit = subparsers.add_parser(
        "audit", help="verify or read the audit log", description="Verify or read the audit log."
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check the hash chain; exit 1 naming the first bad record",
        description="Check every record's hash, seq and link, and the head file (or head row). "
        "Exits 0 if the chain is intact, 1 naming the first bad record otherwise.",
    )
    _add_source(verify)
    verify.set_defaults(handler=_run_verify, func=_run_verify)
    show = commands.add_parser(
        "show",
        help="print the log as a timeline",
        description="Print the audit log as a human-readable timeline.",
    )
    _add_source(show)
    show.add_argument("--incident", metavar="ID", default=None, help="only this incident")
    show.set_defaults(handler=_run_show, func=_run_show)
    repair = commands.add_parser(
        "repair",
        help="cut a last line torn by a crash mid-write, keeping every complete record",
        description="Cut a last line torn by a crash mid-write (saved beside the log as "
        "evidence), set the head file to the complete records and verify again. A log broken "
        "any other way (an edited, removed or reordered record) is left as it is: exit 1.",
    )
    repair.add_argument("file", type=Path, metavar="FILE", help="the audit log (JSONL)")
    repair.set_defaults(handler=_run_repair, func=_run_repair)
    export = commands.add_parser(
        "export",
        help="write the Postgres audit store to a JSONL file and its head file",
        description="Write every record of the Postgres audit store, byte for byte, to a JSONL "
        "file, and the head row to FILE.head, so that `audit verify FILE` and `audit show FILE` "
        "work on it. A broken store is exported as it is (evidence).",
    )
    export.add_argument(
        "--postgres-env",
        metavar="VAR",
        required=True,
        help="the environment variable that holds the store's DSN",
    )
    export.add_argument("--out", type=Path, metavar="FILE", required=True, help="the file")
    export.set_defaults(handler=_run_export, func=_run_export)
