"""``audit verify FILE`` and ``audit show FILE [--incident ID]``.

Only argparse is imported at module level: the audit package (pydantic, OpenTelemetry) loads
when a command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO


def verify_command(path: Path, out: TextIO | None = None) -> int:
    """Verify the log at ``path``; print the outcome; 0 if intact, 1 otherwise."""
    from supervisor.audit import verify

    stream = out if out is not None else sys.stdout
    result = verify(path)
    if result.ok:
        print(f"OK: {result.records} records, {result.reason}", file=stream)
        return 0
    where = f"record {result.first_bad_seq}" if result.first_bad_seq is not None else str(path)
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


def _run_verify(args: argparse.Namespace) -> int:
    return verify_command(args.file)


def _run_show(args: argparse.Namespace) -> int:
    return show_command(args.file, args.incident)


def add_audit_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``audit verify`` and ``audit show``.

    Each sets ``handler(args) -> int`` (the exit code) on the namespace, also as ``func``.
    """
    audit = subparsers.add_parser(
        "audit", help="verify or read the audit log", description="Verify or read the audit log."
    )
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="check the hash chain; exit 1 naming the first bad record",
        description="Check every record's hash, seq and link, and the head file. Exits 0 if "
        "the chain is intact, 1 naming the first bad record otherwise.",
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the audit log (JSONL)")
    verify.set_defaults(handler=_run_verify, func=_run_verify)
    show = commands.add_parser(
        "show",
        help="print the log as a timeline",
        description="Print the audit log as a human-readable timeline.",
    )
    show.add_argument("file", type=Path, metavar="FILE", help="the audit log (JSONL)")
    show.add_argument("--incident", metavar="ID", default=None, help="only this incident")
    show.set_defaults(handler=_run_show, func=_run_show)
