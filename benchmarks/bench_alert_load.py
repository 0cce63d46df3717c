"""Alertmanager load on ``mlops-supervisor serve``: 10,000 webhook notifications over loopback.

Starts the real service (uvicorn, sim-backed models, rules reasoner) in a subprocess, waits
until it is ready (``/readyz``), sends the notifications from this process over a few
keep-alive connections, and prints:

* sustained notifications per second (first request sent to last answer received),
* p50 / p99 / max webhook latency (request sent to response read), and p99 per 5-s window,
* the CPU time the service and this client used meanwhile,
* the accounting check, from the service's audit log after it stopped: every alert of every
  notification is one ``signal`` record (same fingerprint and status counts as sent), every
  watched group (model, symptom) landed in exactly one incident, and the incident index holds
  exactly that many; the hash chain verifies.

The traffic looks like an Alertmanager storm: ``--groups`` (model, alertname) groups, each
with one to three alert instances (fingerprints), re-sent every repeat (same groupKey and
fingerprints), some resolving and firing again (flapping), plus groups the supervisor must
ignore (an unmapped alertname, an unwatched model). The notifications of one group go over one
connection in order, as Alertmanager sends them; groups interleave across connections.

With ``--postgres`` the service keeps its state in a throwaway Postgres server instead
(``_postgres_server.py``; ``ha.postgres_dsn_env``, no lease, so the one replica leads): audit
trail, incident index, graph checkpoints. The accounting then reads the trail from Postgres
(exported next to the config, verified with ``verify_postgres``) and the incidents from their
table, and the server's CPU and its transactions and WAL flushes per alert are printed too.

    python benchmarks/bench_alert_load.py [--notifications 10000] [--connections 8]
        [--rate 0 (as fast as it goes) | --rate 500 (open loop at 500/s)] [--postgres]

Measured on a shared 2-CPU VM (Python 3.11.7), nothing lost in any run. Before group commit
and threaded intake: 68/s, p99 441 ms. With them: 350-364/s, p99 110-123 ms (load average
1.6-2.3; traffic from /healthz on, so the Evidently import still ran beside it). Now (intake on
one lane thread in batches, POST /alerts past the middleware stack, traffic from /readyz on,
the boot heap frozen for the collector, one fsync instead of a group commit where the incident
index syncs mid-batch), in the same hour, load average 1.4-2.3: 564-777/s, p99 54-81 ms over
five runs. The first 5 s hold the p99 (86-117 ms there, 14-57 ms after): the 30 new incidents'
graphs share the GIL with intake. With ``--warm`` (intake of repeats alone): 752-991/s, p99
16-19 ms. Then a resolution stopped rewriting the incident index (it is audited at once and
indexed with the next write): side by side, load average 1.3-1.4, 635-649/s, p99 70-73 ms
before and 723-812/s, p99 45-51 ms after; 870-1,058/s, p99 38-45 ms in three runs at load
average 0.8-1.4. ``--py-spy gil`` shows where the service's CPU goes; ``--py-spy wall`` where
requests wait. With ``--postgres`` (Postgres 15 on the same disk, fsync and synchronous_commit
on), three runs alternating with three file runs in the same six minutes, load average
1.3-1.8: 125-139/s, p50 52-57 ms, p99 221-294 ms, against 675-811/s, p50 7-9 ms, p99 54-61 ms
from files; nothing lost. The service spends 3.8-4.3 ms of CPU per notification (files:
1.2-1.5) and the server 2.8-3.0 more, yet service, server and client use under half the
machine: intake is one thread deciding one alert at a time, and with shared state each alert
it folds is 16 round trips and two commits there (advisory lock and unlock, the refresh query,
the audit append in six statements, the incident upsert in three, a pool check per connection
taken; pg_stat_statements), where files share one fsync per batch. ``--py-spy gil``: the
intake thread holds the GIL 1.7 ms of the 4.7 ms each alert takes; psycopg's execute is 39% of
that, the pool 15%. Then a decision became one transaction on one connection (a transaction
advisory lock, the refresh and the upsert; 8.7 -> 4.0 transactions per alert): side by side,
load average 0.8-1.1, 129-131/s, p99 244-250 ms before and 144-155/s, p99 196-202 ms after.
Three ideas that do not help, each tried against the code as it stands, load average 0.9-1.2
(180-183/s, p99 186-216 ms as is): pipelining the audit append and the decision (BEGIN, lock
and catch-up in one round trip; insert, head and COMMIT in another): 163-170/s, with more
service CPU per notification; ``synchronous_commit=off`` (0.01 WAL flushes per alert instead
of 1.96): 198/s; prepared statements (``prepare_threshold=0``, which a pooler in transaction
mode would not take): 192/s. ``--py-spy wall``: the intake thread spends 77% of its time in
psycopg waiting for the server, 61% in the audit append. What is left is the count of
statements each alert runs one after another; the lever is one transaction per intake batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _postgres_server import PostgresServer, throwaway_server

REPO = Path(__file__).resolve().parents[1]
#: The variable that carries the throwaway server's DSN to the service (``--postgres``).
DSN_ENV = "MLOPS_SUPERVISOR_POSTGRES_DSN"
ALERTNAMES = ["ModelHighErrorRate", "ModelHighLatency", "ModelDataDrift", "ModelSaturated"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    root: Path, models: int, port: int, workers: int, dsn_env: str | None = None
) -> Path:
    """A watch config of ``models`` sim-backed models; no scheduled checks (only the alerts
    under test open incidents) and no settle wait (workers do not sleep). With ``dsn_env``, the
    state is in the Postgres whose DSN that variable holds (no lease: a single replica leads)."""
    raw: dict[str, Any] = {
        "models": [{"name": f"model-{i:02d}", "owner": f"team-{i % 4}"} for i in range(models)],
        "policy_file": str(REPO / "policies" / "default.yaml"),
        "playbooks_dir": str(REPO / "playbooks"),
        "state_dir": str(root / "state"),
        "timing": {"verify_settle_seconds": 0},
        "service": {
            "host": "127.0.0.1",
            "port": port,
            "workers": workers,
            "check_interval_seconds": 0,
        },
        "telemetry": {"file": str(root / "traces.jsonl")},
    }
    if dsn_env is not None:
        raw["ha"] = {"postgres_dsn_env": dsn_env}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _alert(status: str, labels: dict[str, str], fingerprint: str, at: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} on {labels['model']}"},
        "startsAt": at,
        "endsAt": "2026-01-05T10:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def make_traffic(
    n: int, groups: int, models: int, seed: int
) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, Any]]:
    """``n`` notifications as (group index, body), in send order, and what the log must show."""
    rng = random.Random(seed)
    specs = []
    for g in range(groups):
        model, alertname = f"model-{g % models:02d}", ALERTNAMES[(g // models) % len(ALERTNAMES)]
        specs.append((model, alertname, True))
    specs.append(("model-00", "DiskAlmostFull", False))  # no symptom: audited, ignored
    specs.append(("not-watched", "ModelHighErrorRate", False))  # unwatched model: ignored
    state: list[dict[str, Any]] = []
    for g, (model, alertname, watched) in enumerate(specs):
        instances = rng.choice([1, 1, 2, 3])
        fps = [f"{g:04x}{i:04x}{rng.getrandbits(32):08x}" for i in range(instances)]
        state.append({"model": model, "alertname": alertname, "watched": watched, "fps": fps})
    sent: list[tuple[int, dict[str, Any]]] = []
    expected: Counter[tuple[str, str]] = Counter()
    firing = {g: False for g in range(len(specs))}
    for _ in range(n):
        g = rng.randrange(len(specs))
        s = state[g]
        # Resolve sometimes (only what fired), fire again after a resolve: flapping.
        status = "resolved" if firing[g] and rng.random() < 0.15 else "firing"
        firing[g] = status == "firing"
        labels_of = [
            {"alertname": s["alertname"], "model": s["model"], "severity": "page", "pod": f"p{i}"}
            for i in range(len(s["fps"]))
        ]
        alerts = [
            _alert(status, labels, fp, "2026-01-05T09:00:00Z")
            for labels, fp in zip(labels_of, s["fps"], strict=True)
        ]
        for fp in s["fps"]:
            expected[(fp, status)] += 1
        body: dict[str, Any] = {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{s["alertname"]}", model="{s["model"]}"}}',
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "mlops-supervisor",
            "groupLabels": {"alertname": s["alertname"], "model": s["model"]},
            "commonLabels": {"alertname": s["alertname"], "model": s["model"]},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
        sent.append((g, body))
    # A group whose first notification is a resolve opens nothing; firing first is the norm.
    first_status: dict[int, str] = {}
    for g, body in sent:
        first_status.setdefault(g, body["status"])
    groups_opened = {
        (state[g]["model"], state[g]["alertname"])
        for g in first_status
        if state[g]["watched"] and any(b["status"] == "firing" for gg, b in sent if gg == g)
    }
    fp_group = {fp: (s["model"], s["alertname"]) for s in state for fp in s["fps"]}
    watched_fps = {fp for s in state if s["watched"] for fp in s["fps"]}
    return sent, {
        "per_fingerprint": expected,
        "alerts": sum(expected.values()),
        "groups": groups_opened,
        "fp_group": fp_group,
        "watched_fps": watched_fps,
    }


@dataclass
class Sent:
    """What :func:`send_all` measured."""

    latencies: list[float]  # seconds, request sent to response read
    sent_at: list[float]  # seconds from the first request, per latency
    wall: float  # seconds, first request sent to last response read
    errors: int  # answers other than 200


async def send_all(
    url: str, sent: list[tuple[int, dict[str, Any]]], connections: int, rate: float
) -> Sent:
    """Send over ``connections`` keep-alive connections."""
    import aiohttp

    lanes: list[list[tuple[int, bytes]]] = [[] for _ in range(connections)]
    for i, (g, body) in enumerate(sent):
        lanes[g % connections].append((i, json.dumps(body).encode()))
    latencies: list[float] = []
    sent_at: list[float] = []  # seconds from the start, per latency
    errors = 0
    start = time.perf_counter()

    async def lane(items: list[tuple[int, bytes]]) -> None:
        nonlocal errors
        connector = aiohttp.TCPConnector(limit=1)
        headers = {"content-type": "application/json"}
        async with aiohttp.ClientSession(connector=connector) as session:
            for i, data in items:
                if rate > 0:  # open loop: notification i is due at i / rate
                    due = start + i / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                t0 = time.perf_counter()
                async with session.post(url, data=data, headers=headers) as res:
                    await res.read()
                    if res.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)
                sent_at.append(t0 - start)

    await asyncio.gather(*(lane(items) for items in lanes if items))
    return Sent(latencies, sent_at, time.perf_counter() - start, errors)


def account_files(state_dir: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Check the audit log and incident index the service left in its state directory."""
    from supervisor.audit import verify

    incidents = json.loads((state_dir / "incidents.json").read_text(encoding="utf-8"))
    chain_ok = bool(verify(state_dir / "audit.jsonl").ok)
    return account(state_dir / "audit.jsonl", incidents, chain_ok, expected)


def account_postgres(dsn: str, trail: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Check the audit trail and incident index the service left in Postgres; the trail is
    exported to ``trail`` (JSONL and its head file) first."""
    import psycopg

    from supervisor.audit import export_postgres, verify_postgres

    export_postgres(dsn, trail)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT body FROM mlops_supervisor_incidents").fetchall()
    return account(trail, [body for (body,) in rows], bool(verify_postgres(dsn).ok), expected)


def account(
    trail: Path, incidents: list[dict[str, Any]], chain_ok: bool, expected: dict[str, Any]
) -> dict[str, Any]:
    """Compare the audit trail (JSONL) and the incident index with what was sent."""
    seen: Counter[tuple[str, str]] = Counter()
    incident_of_group: dict[tuple[str, str], set[str]] = {}
    ignored = 0
    for line in trail.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec["kind"] != "signal" or rec["actor"] != "alertmanager":
            continue
        data = rec["data"]
        sig = data.get("signal")
        if sig is None:  # unmapped alertname: recorded with its fingerprint only
            fp, status = data["fingerprint"], "?"
            ignored += 1
        else:
            fp, status = sig["fingerprint"], sig["status"]
            if rec["incident_id"] is None:
                ignored += 1
        if status == "?":  # take the status the group sent at that point: count by fp only
            seen[(fp, "any")] += 1
        else:
            seen[(fp, status)] += 1
        if rec["incident_id"] is not None and fp in expected["watched_fps"]:
            incident_of_group.setdefault(expected["fp_group"][fp], set()).add(rec["incident_id"])
    per_fp_expected = expected["per_fingerprint"]
    mismatched = []
    for fp in {fp for fp, _ in per_fp_expected}:
        want = {s: per_fp_expected.get((fp, s), 0) for s in ("firing", "resolved")}
        got = {s: seen.get((fp, s), 0) for s in ("firing", "resolved")}
        if seen.get((fp, "any")):
            if seen[(fp, "any")] != sum(want.values()):
                mismatched.append(fp)
        elif got != want:
            mismatched.append(fp)
    split = {g: ids for g, ids in incident_of_group.items() if len(ids) != 1}
    return {
        "signal_records": sum(seen.values()),
        "ignored_records": ignored,
        "fingerprints_mismatched": mismatched,
        "groups_with_incident": len(incident_of_group),
        "groups_split": split,
        "incidents": len(incidents),
        "chain_ok": chain_ok,
    }


def _wait_incidents(base: str, bound: float = 300) -> None:
    import httpx

    end = time.perf_counter() + bound
    while time.perf_counter() < end:
        listed = httpx.get(f"{base}/incidents", timeout=10).json()["incidents"]
        if listed and all(i["status"] not in ("open", "investigating") for i in listed):
            return
        time.sleep(0.2)


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] without it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return []


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process (all its threads) so far; 0 without /proc."""
    fields = _stat(pid)
    if not fields:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _server_cpu_seconds(pid: int) -> float:
    """CPU time of a server and its children so far, the exited ones included (Postgres: the
    postmaster and its backends); 0 without /proc."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime (exited children)
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            ticks += sum(int(f) for f in _stat(int(child))[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_counters(dsn: str) -> tuple[int, int]:
    """Transactions (committed or rolled back) and WAL flushes so far, server-wide: only the
    service uses the throwaway server. A backend reports its counts within a second or so."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database)::bigint, "
            "(SELECT wal_sync FROM pg_stat_wal)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _postgres_settings(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit')"
        ).fetchone()
    assert row is not None
    return f"Postgres {row[0].split()[0]} (fsync {row[1]}, synchronous_commit {row[2]})"


def _service_pid(proc: subprocess.Popen[bytes], profiled: bool) -> int:
    """The service's pid: under py-spy, the profiler's child."""
    if not profiled:
        return proc.pid
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    for _ in range(100):
        with contextlib.suppress(OSError, ValueError):
            return int(children.read_text().split()[0])
        time.sleep(0.05)
    return proc.pid


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--notifications", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0, help="open-loop rate/s; 0: closed loop")
    ap.add_argument("--models", type=int, default=30)
    ap.add_argument("--groups", type=int, default=30, help="watched (model, alertname) groups")
    ap.add_argument("--workers", type=int, default=2, help="service incident workers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep the state in this directory")
    ap.add_argument(
        "--py-spy",
        choices=["wall", "gil"],
        default=None,
        help="profile the service with py-spy into <state>/profile.txt: every non-idle thread "
        "(wall: where requests wait) or only the thread holding the GIL (gil: where CPU goes)",
    )
    ap.add_argument(
        "--warm",
        action="store_true",
        help="send each group's first notification first and wait for those incidents' graphs "
        "before the clock starts (measures intake of repeats alone)",
    )
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="keep the service's state in a throwaway Postgres server (ha.postgres_dsn_env: "
        "audit trail, incidents, checkpoints) instead of files in its state directory",
    )
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    if (root / "state").exists():
        # A previous run's incidents would absorb this run's alerts: no graphs, other counts.
        ap.error(f"--keep {str(root)!r} holds the state of a previous run; pick a new directory")
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # The server outlives the service: the accounting reads the state it left there.
        server = stack.enter_context(throwaway_server()) if args.postgres else None
        return bench(args, root, server)


def bench(args: argparse.Namespace, root: Path, server: PostgresServer | None) -> int:
    """Run the service, send the traffic, check the state it left and print the figures."""
    port = _free_port()
    config = write_config(
        root, args.models, port, args.workers, None if server is None else DSN_ENV
    )
    sent, expected = make_traffic(args.notifications, args.groups, args.models, args.seed)
    log = (root / "serve.log").open("wb")
    env = {**os.environ, "MLOPS_SUPERVISOR_APPROVAL_TOKEN": "bench"}
    if server is not None:
        env[DSN_ENV] = server.dsn
    cmd = [sys.executable, "-m", "supervisor", "serve", "--config", str(config)]
    if args.py_spy:
        spy = str(Path(sys.executable).with_name("py-spy"))
        gil = ["--gil"] if args.py_spy == "gil" else []
        cmd = [spy, "record", *gil, "-f", "raw", "-o", str(root / "profile.txt"), "--", *cmd]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    pg_before, pg_cpu = (0, 0), 0.0  # --postgres: the server's counters and CPU
    try:
        import httpx

        # Traffic starts when the service is ready, as a Kubernetes Service sends it: /readyz
        # answers 503 while the service warms up (the Evidently import) after /healthz is up.
        t_boot = time.perf_counter()
        boot = 0.0
        while True:
            if proc.poll() is not None or time.perf_counter() - t_boot > 300:
                print((root / "serve.log").read_text()[-3000:], file=sys.stderr)
                print("the service exited or was not ready within 300 s", file=sys.stderr)
                return 1
            try:
                if not boot and httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    boot = time.perf_counter() - t_boot
                if boot and httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        ready = time.perf_counter() - t_boot
        measured = sent
        if args.warm:  # open the incidents first and let their graphs finish, then measure
            firsts = {g: i for i, (g, _) in reversed(list(enumerate(sent)))}
            warm = [sent[i] for i in sorted(firsts.values())]
            measured = [x for i, x in enumerate(sent) if i not in set(firsts.values())]
            asyncio.run(send_all(f"{base}/alerts", warm, 1, 0))
            _wait_incidents(base)
        load_before = os.getloadavg()[0]
        pid = _service_pid(proc, bool(args.py_spy))
        if server is not None:
            pg_before, pg_cpu = _postgres_counters(server.dsn), _server_cpu_seconds(server.pid())
        cpu_before, cpu_client = _cpu_seconds(pid), time.process_time()
        run = asyncio.run(send_all(f"{base}/alerts", measured, args.connections, args.rate))
        latencies, wall, errors = run.latencies, run.wall, run.errors
        cpu_after = _cpu_seconds(pid)
        cpu_user, cpu_sys = (a - b for a, b in zip(cpu_after, cpu_before, strict=True))
        cpu_client = time.process_time() - cpu_client
        if server is not None:
            pg_cpu = _server_cpu_seconds(server.pid()) - pg_cpu
        load_after = os.getloadavg()[0]
        _wait_incidents(base)  # the workers finish before the stop, so the log is complete
    finally:
        proc.send_signal(signal.SIGINT if args.py_spy else signal.SIGTERM)
        code = proc.wait(timeout=120)
        log.close()
    if server is None:
        checks = account_files(root / "state", expected)
    else:
        # After the stop every backend has reported its counts: the graphs' tail is included.
        pg_after = _postgres_counters(server.dsn)
        xacts, syncs = (a - b for a, b in zip(pg_after, pg_before, strict=True))
        checks = account_postgres(server.dsn, root / "audit-export.jsonl", expected)
    rate = len(latencies) / wall
    ok = (
        errors == 0
        and checks["signal_records"] == expected["alerts"]
        and not checks["fingerprints_mismatched"]
        and not checks["groups_split"]
        and checks["groups_with_incident"] == len(expected["groups"])
        and checks["incidents"] == len(expected["groups"])
        and checks["chain_ok"]
        and code == 0
    )
    warmed = ", after warm-up" if args.warm else ""
    mode = f"open loop at {args.rate:g}/s" if args.rate else "closed loop"
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    # The machine may be shared: the 1-minute load average says how much else was running.
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after the run")
    state = "files in the state directory" if server is None else _postgres_settings(server.dsn)
    print(
        f"service: {args.workers} incident workers, state: {state}; start to /healthz "
        f"{boot:.1f} s, to /readyz (warmed up) {ready:.1f} s"
    )
    print(
        f"sent {len(sent)} notifications ({len(latencies)} measured{warmed}; "
        f"{expected['alerts']} alerts, {len(expected['groups'])} "
        f"watched groups + 2 ignored) over {args.connections} connections, {mode}"
    )
    print(f"sustained: {rate:,.0f} notifications/s ({wall:.2f} s), errors {errors}")
    print(
        f"latency: p50 {pct(latencies, 0.5) * 1000:.1f} ms, p99 {pct(latencies, 0.99) * 1000:.1f} "
        f"ms, max {max(latencies) * 1000:.1f} ms"
    )
    # The first seconds carry the new incidents' graphs: show how latency moves over the run.
    windows: dict[int, list[float]] = {}
    for at, latency in zip(run.sent_at, latencies, strict=True):
        windows.setdefault(int(at // 5), []).append(latency)
    print(
        "p99 latency by 5-s window: "
        + ", ".join(f"{pct(v, 0.99) * 1000:.0f}" for _, v in sorted(windows.items()))
        + " ms"
    )
    # CPU used while the notifications were sent (the service's includes its incident graphs).
    cpu_service = cpu_user + cpu_sys
    print(
        f"cpu: service {cpu_service:.1f} s (user {cpu_user:.1f}, system {cpu_sys:.1f}; "
        f"{cpu_service / len(latencies) * 1e6:,.0f} us per notification), client "
        f"{cpu_client:.1f} s, of {wall * (os.cpu_count() or 1):.1f} CPU-seconds the machine had"
    )
    if server is not None:
        alerts = sum(len(body["alerts"]) for _, body in measured)
        print(
            f"postgres: server cpu {pg_cpu:.1f} s ({pg_cpu / len(latencies) * 1e6:,.0f} us per "
            f"notification); {xacts / alerts:.1f} transactions and {syncs / alerts:.2f} WAL "
            f"flushes per alert ({xacts:,} and {syncs:,} for {alerts:,} alerts, graphs included)"
        )
    print(
        f"audit: {checks['signal_records']} signal records for {expected['alerts']} alerts sent "
        f"({checks['ignored_records']} ignored as unmapped/unwatched), fingerprints mismatched: "
        f"{len(checks['fingerprints_mismatched'])}; incidents {checks['incidents']} for "
        f"{len(expected['groups'])} groups, groups split over several incidents: "
        f"{len(checks['groups_split'])}; chain verifies: {checks['chain_ok']}; exit code {code}"
    )
    goal = rate >= 500 and pct(latencies, 0.99) < 0.1
    print(
        f"accounting: {'OK' if ok else 'FAILED'}; "
        f"goal (>=500/s, p99<100 ms): {'met' if goal else 'NOT met'}"
    )
    print(f"state kept in {root}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
