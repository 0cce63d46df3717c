"""Argument parsing and dispatch. Each command imports what it needs only when it runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from supervisor import __version__
from supervisor._errors import SupervisorError

from ._audit_cmd import add_audit_parser
from ._eval_cmd import add_eval_parser, add_generate_parser

#: The approval API's token variable unless --token-env says otherwise (the config's default).
_TOKEN_ENV = "MLOPS_SUPERVISOR_APPROVAL_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-supervisor",
        description=(
            "Diagnose ML incidents and act on them only as policy allows, "
            "with a verifiable audit trail."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    demo = sub.add_parser(
        "demo", help="run three incidents in the simulated world and show the timeline"
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-out"), help="output directory (default: demo-out)"
    )
    demo.add_argument("--seed", type=int, default=7, help="world seed (default: 7)")
    demo.add_argument("--quiet", action="store_true", help="print only the summary")
    demo.add_argument(
        "--registry",
        choices=("mlflow", "sim"),
        default="mlflow",
        help="where the models live: a local MLflow store in OUT/state/mlflow (default) "
        "or the simulated world only",
    )
    demo.set_defaults(handler=_demo)

    for verb in ("approve", "deny"):
        p = sub.add_parser(verb, help=f"{verb} the action an incident is waiting on")
        p.add_argument("incident", help="incident id")
        p.add_argument(
            "--by", required=True, help="your identity (must be an approver for approve)"
        )
        p.add_argument("--comment", default="", help="free text kept in the audit log")
        _where_incidents_are(p)
        _service_token(p)
        p.set_defaults(handler=_answer, verb=verb)

    serve = sub.add_parser(
        "serve", help="run the cluster service (alerts, incidents API, approvals, metrics)"
    )
    serve.add_argument("--config", type=Path, required=True, help="watch config YAML")
    serve.add_argument("--host", default=None, help="override service.host")
    serve.add_argument("--port", type=int, default=None, help="override service.port")
    serve.set_defaults(handler=_serve)

    for verb in ("pause", "resume"):
        p = sub.add_parser(
            verb,
            help=f"{verb} acting, globally or for one model (investigation and reports go on)",
        )
        p.add_argument("model", nargs="?", default=None, help="one model (default: all)")
        p.add_argument("--by", required=True, help="your identity (audited)")
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--state", type=Path, help="state directory of the supervisor")
        where.add_argument(
            "--config",
            type=Path,
            help="the service's watch config: its state dir, or the Postgres state replicas "
            "share when ha.postgres_dsn_env is set",
        )
        _service_url(where)
        _service_token(p)
        p.set_defaults(handler=_pause, verb=verb)

    inc = sub.add_parser(
        "incidents", help="list incidents and pending approvals (of a run, or of a service)"
    )
    _where_incidents_are(inc)
    inc.add_argument(
        "--json",
        action="store_true",
        help="print one JSON array of the incidents (each with its pending_approval or null)",
    )
    inc.set_defaults(handler=_incidents)

    schema = sub.add_parser(
        "schema", help="write the JSON Schemas of config, policy and playbook files"
    )
    schema.add_argument(
        "--out", type=Path, default=Path("schemas"), help="directory (default: schemas)"
    )
    schema.set_defaults(handler=_schema)

    add_audit_parser(sub)
    add_eval_parser(sub)
    add_generate_parser(sub)
    return parser


def _where_incidents_are(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--state", type=Path, help="state directory of a run (e.g. demo-out/state)")
    _service_url(where)


def _service_url(where: argparse._MutuallyExclusiveGroup) -> None:
    where.add_argument(
        "--service",
        metavar="URL",
        help="a running service's base URL (e.g. http://127.0.0.1:8080): ask it over its API",
    )


def _service_token(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--token-env",
        default=_TOKEN_ENV,
        help=f"with --service: the variable holding the API's bearer token (default: {_TOKEN_ENV})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 1 a runtime error or something not found (the
    message on stderr), 2 a usage error (argparse, before anything runs)."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except SupervisorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return code


def _demo(args: argparse.Namespace) -> int:
    from supervisor.demo import run_demo

    return run_demo(args.out, seed=args.seed, quiet=args.quiet, registry=args.registry)


def _pause(args: argparse.Namespace) -> int:
    scope = args.model or "all models"
    done = "paused" if args.verb == "pause" else "resumed"
    if args.service is not None:
        from ._remote import switch_via_service

        changed = switch_via_service(args.service, args.verb, args.model, args.by, args.token_env)
        print(f"{scope}: {done} by {args.by}" if changed else f"{scope}: already {done}")
        return 0
    from opentelemetry import trace

    from supervisor._clock import SystemClock
    from supervisor._recorder import Recorder
    from supervisor.audit import AuditLog, AuditTrail
    from supervisor.chatops._pause import PauseSwitch

    clock = SystemClock()
    state: Path = args.state
    shared = None
    known: list[str] | None = None
    if args.config is not None:
        from supervisor.config import load_config
        from supervisor.ha import checkpoints_from_config

        config = load_config(args.config)
        state, known = config.state_dir, [m.name for m in config.models]
        shared = checkpoints_from_config(config.ha)
    try:
        audit: AuditTrail
        if shared is not None:
            from supervisor.audit import PostgresAuditLog
            from supervisor.ha import PostgresDocument, setup_shared_state

            setup_shared_state(shared.pool)
            audit = PostgresAuditLog(shared.pool, clock)
            document = PostgresDocument(shared.pool, "pause")
        elif not (state / "audit.jsonl").exists():
            raise SupervisorError(f"{str(state)!r} has no audit log; pass a supervisor's state dir")
        else:
            audit, document = AuditLog(state / "audit.jsonl", clock), None
        try:
            switch = PauseSwitch(
                state / "pause.json",
                Recorder(audit, trace.get_tracer("mlops-supervisor")),
                clock,
                known_models=known,
                shared=document,
            )
            verb = switch.pause if args.verb == "pause" else switch.resume
            changed = verb(args.model, args.by)
        finally:
            audit.close()
    finally:
        if shared is not None:
            shared.close()
    print(f"{scope}: {done} by {args.by}" if changed else f"{scope}: already {done}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from supervisor.service import serve

    return serve(args.config, host=args.host, port=args.port)


_PAST = {"approve": "approved", "deny": "denied"}


def _answer(args: argparse.Namespace) -> int:
    if args.service is not None:
        from ._remote import answer_via_service

        answer_via_service(
            args.service, args.incident, args.verb, args.by, args.comment, args.token_env
        )
        print(
            f"{args.incident}: {_PAST[args.verb]} by {args.by}; the service applies it "
            f"(follow it with `mlops-supervisor incidents --service {args.service}`)"
        )
        return 0
    from ._session import open_session

    with open_session(args.state) as sup:
        fn = sup.approve if args.verb == "approve" else sup.deny
        state = fn(args.incident, args.by, args.comment)
        print(
            f"{args.incident}: {_PAST[args.verb]} by {args.by}; "
            f"incident is now {state.get('status')}"
        )
        if state.get("report_path"):
            print(f"report: {state['report_path']}")
    return 0


def _incidents(args: argparse.Namespace) -> int:
    from ._incidents_cmd import incidents_from_state, print_incidents

    if args.service is None:
        return print_incidents(incidents_from_state(args.state), as_json=args.json)
    from ._remote import incidents_via_service, pending_via_service

    rows = [
        {
            **row,
            "pending_approval": pending_via_service(args.service, row["id"])
            if row.get("status") == "awaiting_approval"
            else None,
        }
        for row in incidents_via_service(args.service)
    ]
    return print_incidents(rows, as_json=args.json)


def _schema(args: argparse.Namespace) -> int:
    from supervisor.schemas import write_schemas

    for path in write_schemas(args.out):
        print(f"wrote {path}")
    return 0
