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
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from supervisor.audit import VerifyResult
    from supervisor.audit._verify import ChainError
    from supervisor.domain import AuditRecord


def verify_command(path: Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Verify the log at ``path``; 0 if intact (OK on ``out``), 1 otherwise (FAILED on
    ``err``, default stderr)."""
    from supervisor.audit import verify

    return _report(verify(path), str(path), out, err)


def verify_postgres_command(
    dsn_env: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Verify the Postgres store whose DSN is in ``$dsn_env``, as :func:`verify_command` does
    for a file. Raises :class:`ConfigError` if the variable is unset or the server cannot be
    reached."""
    from supervisor.audit import verify_postgres
    from supervisor.audit._postgres import describe_dsn

    dsn = _dsn(dsn_env)
    return _report(verify_postgres(dsn), describe_dsn(dsn), out, err)


def _report(result: VerifyResult, where: str, out: TextIO | None, err: TextIO | None) -> int:
    if result.ok:
        print(f"OK: {result.records} records, {result.reason}", file=out or sys.stdout)
        return 0
    # The reason names the bad record (or line) itself; say it once, on stderr.
    print(
        f"FAILED: {where}: {result.reason} ({result.records} records verified before it)",
        file=err or sys.stderr,
    )
    return 1


def show_command(
    path: Path | None,
    incident_id: str | None = None,
    out: TextIO | None = None,
    *,
    kinds: Sequence[str] = (),
    since: datetime | None = None,
    as_json: bool = False,
    err: TextIO | None = None,
    postgres_env: str | None = None,
) -> int:
    """Print the timeline of the log at ``path`` (or, with ``postgres_env``, of the Postgres
    store whose DSN is in that variable), filtered by incident, kinds and time; with
    ``as_json``, the records as stored, one JSON object per line.

    0; 1 if the log is missing, the incident has no record, or a record breaks the chain (the
    records before it are printed, and one message goes to ``err``). Reading does not verify
    the head file: run ``audit verify`` for that. Raises :class:`ConfigError` if
    ``postgres_env`` is unset or the server cannot be reached.
    """
    errors = err if err is not None else sys.stderr
    if postgres_env is not None:
        from supervisor.audit._postgres import read_postgres

        records, broken = read_postgres(_dsn(postgres_env))
    elif path is not None:
        read = _read_file(path)
        if read is None:
            print(f"error: no audit log at {str(path)!r}", file=errors)
            return 1
        records, broken = read
    else:
        raise ValueError("show_command needs a path or postgres_env")
    return _show(records, broken, incident_id, kinds, since, as_json, out, errors)


def _read_file(path: Path) -> tuple[list[AuditRecord], ChainError | None] | None:
    """The records of the log at ``path`` up to the first that breaks the chain (and that
    break); None if there is no such file."""
    from supervisor.audit._verify import ChainError, ChainState

    chain = ChainState()
    records = []
    try:
        with path.open("rb") as f:
            for raw in f:
                records.append(chain.accept(raw))
    except FileNotFoundError:
        return None
    except ChainError as exc:
        return records, exc
    return records, None


def _show(
    records: list[AuditRecord],
    broken: ChainError | None,
    incident_id: str | None,
    kinds: Sequence[str],
    since: datetime | None,
    as_json: bool,
    out: TextIO | None,
    errors: TextIO,
) -> int:
    from supervisor.audit import render_timeline
    from supervisor.audit._show import render_json_lines, select
    from supervisor.domain import AuditKind

    stream = out if out is not None else sys.stdout
    chosen = list(
        select(
            records,
            incident_id=incident_id,
            kinds=[AuditKind(k) for k in kinds],
            since=since,
        )
    )
    unknown = incident_id is not None and not any(r.incident_id == incident_id for r in records)
    if as_json:
        stream.write(render_json_lines(chosen))
    elif not unknown:
        stream.write(render_timeline(chosen))
    if broken is not None:
        # Once, on stderr: the reason names the record; nothing after it is shown.
        print(
            f"error: the audit log is broken: {broken.reason}; records from {broken.position} "
            "on are not shown (`mlops-supervisor audit verify` says more)",
            file=errors,
        )
        return 1
    if unknown:
        print(f"error: no audit records for incident {incident_id!r}", file=errors)
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
    filters = {"kinds": args.kind or (), "since": args.since, "as_json": args.json}
    return show_command(args.file, args.incident, postgres_env=args.postgres_env, **filters)


def _kinds(text: str) -> list[str]:
    """``--kind decision,approval``: audit kinds, checked against the vocabulary."""
    from supervisor.domain import AuditKind

    known = [k.value for k in AuditKind]
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if unknown := [k for k in kinds if k not in known]:
        raise argparse.ArgumentTypeError(
            f"unknown kind {unknown[0]!r}; choose from {', '.join(known)}"
        )
    return kinds


_UNITS_S = {"m": 60, "h": 3600, "d": 86400}


def _since(text: str) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise) or a duration back from
    now (``90m``, ``2h``, ``7d``)."""
    value = text.strip()
    if len(value) > 1 and value[-1] in _UNITS_S and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(value[:-1]) * _UNITS_S[value[-1]])
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time (2026-01-05T09:00Z) nor a duration (90m, 2h, 7d)"
        ) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


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
        description="Print the audit log as a human-readable timeline (or as JSON lines). "
        "Exits 1 if the log is missing or broken (the records before the break are printed, "
        "the break is named once on stderr) or the incident has no record; 2 on a usage error.",
    )
    _add_source(show)
    show.add_argument(
        "--incident",
        metavar="ID",
        default=None,
        help="only this incident (exit 1 if the log has no record of it)",
    )
    show.add_argument(
        "--kind",
        metavar="KIND[,KIND]",
        type=_kinds,
        action="extend",
        default=None,
        help="only these record kinds (repeatable), e.g. decision,approval",
    )
    show.add_argument(
        "--since",
        metavar="WHEN",
        type=_since,
        default=None,
        help="only records at or after WHEN: an ISO 8601 time (UTC unless it says "
        "otherwise) or a duration back from now such as 90m, 2h or 7d",
    )
    show.add_argument(
        "--json",
        action="store_true",
        help="print the records as stored (redacted when written), one JSON object per line",
    )
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
