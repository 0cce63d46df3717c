"""The supervisor: wires config, backends, reasoner, guard, executor, audit and the graph, and
drives incidents through it (new signals, approvals, timeouts)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from supervisor._clock import Clock
from supervisor._errors import ConfigError, SupervisorError
from supervisor._errors import NotLeader as NotLeader  # re-exported by supervisor.runtime
from supervisor._recorder import Recorder
from supervisor.audit import AuditLog, AuditTrail
from supervisor.chatops._pause import PauseSwitch
from supervisor.config import SupervisorConfig
from supervisor.domain import Approval, AuditKind, Incident, IncidentStatus, PolicyDecision, Signal
from supervisor.executor import Executor
from supervisor.graph import (
    IncidentState,
    RecheckPending,
    SupervisorContext,
    VerifyPending,
    build_graph,
)
from supervisor.ha import (
    PostgresAnswers,
    PostgresDocument,
    PostgresIncidents,
    QueuedAnswer,
    checkpoints_from_config,
    setup_shared_state,
)
from supervisor.incidents import Checker, IncidentManager
from supervisor.policy import PolicyEngine, approval_deadline, load_policy
from supervisor.reasoners import Reasoner, build_reasoner, llm_audit_sink, load_playbooks
from supervisor.telemetry import Tracing
from tools import ReadBackends, WriteBackends
from tools._catalog import default_registry
from tools._toolkit import ToolContext

from ._history import AuditActionHistory


@dataclass(frozen=True)
class PendingApproval:
    """An incident paused for a human answer."""

    incident_id: str
    action: str
    approvers: list[str]
    deadline: datetime | None


class LeaderGate(Protocol):
    """Whether this replica may run incident graphs (supervisor.ha.LeaseElector)."""

    def is_leader(self) -> bool: ...


class Supervisor:
    """One supervisor over one state directory (audit log, checkpoints, incidents, reports)."""

    def __init__(
        self,
        config: SupervisorConfig,
        *,
        read: ReadBackends,
        write: WriteBackends,
        clock: Clock,
        tracing: Tracing,
        state_dir: Path | None = None,
        reasoner: Reasoner | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        leader: LeaderGate | None = None,
    ) -> None:
        self.config = config
        self.leader = leader
        self.clock = clock
        self.tracing = tracing
        self.state_dir = state_dir or config.state_dir
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                f"state_dir {str(self.state_dir)!r} cannot be created ({err.strerror}); "
                "fix: set state_dir (or MLOPS_SUPERVISOR_STATE_DIR) to a writable directory"
            ) from None
        # Replicas share everything they decide in Postgres when ha says so (checkpoints,
        # audit trail, incidents, pause switch, answers for the leader); else it all lives in
        # the state directory.
        self._shared = checkpoints_from_config(config.ha)
        self.answers: PostgresAnswers | None = None
        shared_incidents: PostgresIncidents | None = None
        shared_pause: PostgresDocument | None = None
        if self._shared is None:
            self.audit: AuditTrail = AuditLog(self.state_dir / "audit.jsonl", clock)
        else:
            from supervisor.audit._postgres import PostgresAuditLog

            pool = self._shared.pool
            setup_shared_state(pool)
            self.audit = PostgresAuditLog(pool, clock)
            shared_incidents = PostgresIncidents(pool)
            shared_pause = PostgresDocument(pool, "pause")
            self.answers = PostgresAnswers(pool)
        self.recorder = Recorder(self.audit, tracing.tracer)
        tools = default_registry()
        tool_ctx = ToolContext(
            backends=read,
            clock=clock,
            seasonality={m.name: m.drift.seasonality for m in config.models if m.drift.seasonality},
        )
        playbooks = load_playbooks(config.playbooks_dir, known_tools=set(tools.names()))
        self.policy = load_policy(config.policy_file)
        self.pause = PauseSwitch(
            self.state_dir / "pause.json",
            self.recorder,
            clock,
            known_models=[m.name for m in config.models],
            shared=shared_pause,
        )
        self.incidents = IncidentManager(
            self.state_dir / "incidents.json",
            self.recorder,
            clock,
            config,
            shared=shared_incidents,
        )
        self.checker = Checker(config, tools, tool_ctx)
        if reasoner is None:
            reasoner = build_reasoner(
                config.reasoner,
                playbooks,
                config.llm,
                config.limits,
                budget_path=self.state_dir / "llm_budget.json",
                budget_shared=self.shared_document("llm_budget"),
                now=clock.now,
                on_llm_call=llm_audit_sink(self.recorder),
                tracer=tracing.tracer,
            )
        elif getattr(reasoner, "on_llm_call", False) is None:
            reasoner.on_llm_call = llm_audit_sink(self.recorder)  # type: ignore[attr-defined]
        self.context = SupervisorContext(
            config=config,
            clock=clock,
            tools=tools,
            tool_ctx=tool_ctx,
            reasoner=reasoner,
            guard=PolicyEngine(self.policy, clock),
            history=AuditActionHistory(self.audit),
            executor=Executor(
                read, write, self.recorder, clock, pause=self.pause, leading=self.leading
            ),
            recorder=self.recorder,
            reports_dir=self.state_dir / "reports",
        )
        self._graph_lock = threading.Lock()  # one graph step at a time per incident thread
        self._running: set[str] = set()
        self._due: dict[str, datetime] = {}  # deferred verifications (defer_verification)
        # Checkpoints: the one passed in (its owner closes it), Postgres when ha says so, or
        # SQLite in the state directory.
        self._db: sqlite3.Connection | None = None
        if checkpointer is None and self._shared is not None:
            checkpointer = self._shared.saver
        if checkpointer is None:
            db = self.state_dir / "checkpoints.sqlite"
            # Owner-only: checkpoints hold every incident's evidence. SQLite gives its journal
            # files the database file's mode.
            os.close(os.open(db, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(db, 0o600)
            self._db = sqlite3.connect(db, check_same_thread=False)
            checkpointer = SqliteSaver(self._db)
        self.graph = build_graph(checkpointer)

    def leading(self) -> bool:
        """Whether this replica runs incident graphs (always, without a leader gate)."""
        return self.leader is None or self.leader.is_leader()

    # ------------------------------------------------------------------ signals

    def handle(self, signal: Signal) -> Incident | None:
        """Fold a signal into its incident; a new incident runs through the graph at once."""
        incident, is_new = self.ingest(signal)
        if incident is not None and is_new and self.leading():  # else the leader recovers it
            self.start(incident, signal)
        return None if incident is None else self.incidents.get(incident.id)

    def ingest(self, signal: Signal) -> tuple[Incident | None, bool]:
        """Record and deduplicate a signal without running the graph (the service's fast path)."""
        return self.incidents.ingest(signal)

    def start(self, incident: Incident, signal: Signal) -> IncidentState:
        """Run a new incident's thread until it ends or pauses for approval."""
        return self._run(
            incident.id,
            {
                "incident": incident.model_dump(mode="json"),
                "signal": signal.model_dump(mode="json"),
            },
        )

    def tick(self) -> list[Incident]:
        """Run the scheduled checks once and handle what they find; expire stale approvals."""
        if self.leading():
            self.expire_approvals()
            for incident_id in self.incidents.due_rechecks():
                self._run(incident_id, None)  # investigates again, now with the labels
        busy = {
            (i.model, i.environment)
            for i in self.incidents.all()
            if i.status
            not in {IncidentStatus.MITIGATED, IncidentStatus.ESCALATED, IncidentStatus.CLOSED}
        }
        touched = []
        for signal in self.checker.run(busy):
            inc = self.handle(signal)
            if inc is not None:
                touched.append(inc)
        return touched

    # ------------------------------------------------------------------ approvals

    def pending_approvals(self) -> list[PendingApproval]:
        out = []
        for inc in self.incidents.all():
            if inc.status is not IncidentStatus.AWAITING_APPROVAL:
                continue
            state = self.state(inc.id)
            decision = PolicyDecision.model_validate(state["decision"])
            out.append(
                PendingApproval(
                    inc.id, decision.action.value, decision.approvers, approval_deadline(decision)
                )
            )
        return out

    def approve(self, incident_id: str, by: str, comment: str = "") -> IncidentState:
        return self._answer(incident_id, "approved", by, comment)

    def deny(self, incident_id: str, by: str, comment: str = "") -> IncidentState:
        return self._answer(incident_id, "denied", by, comment)

    def expire_approvals(self) -> list[str]:
        """Approvals past their deadline become denials (decided by the clock, not a sleep)."""
        expired = []
        for p in self.pending_approvals():
            if self.answers is not None and self.answers.pending_for(p.incident_id):
                continue  # answered in time on another replica; the leader applies it
            if p.deadline is not None and self.clock.now() > p.deadline:
                self._answer(
                    p.incident_id, "timed_out", "timeout", f"no answer by {p.deadline.isoformat()}"
                )
                expired.append(p.incident_id)
        return expired

    def refuse_non_approver(
        self, incident_id: str, by: str, decision: str, **context: Any
    ) -> list[str] | None:
        """None if ``by`` may answer the incident's pending decision; else the refusal is
        audited (with ``context``: where the answer came from) and the approvers returned."""
        pending = PolicyDecision.model_validate(self.state(incident_id)["decision"])
        if self.policy.is_approver(by, pending):
            return None
        self.recorder.record(
            AuditKind.APPROVAL,
            incident_id=incident_id,
            actor=by,
            data={
                "refused": True,
                "decision": decision,
                "reason": f"{by!r} is not an approver",
                "approvers": pending.approvers,
                **context,
            },
        )
        return pending.approvers

    def _answer(self, incident_id: str, decision: str, by: str, comment: str) -> IncidentState:
        inc = self.incidents.get(incident_id)
        if inc is None:
            raise SupervisorError(
                f"no incident {incident_id!r}; list them with 'mlops-supervisor incidents'"
            )
        if inc.status is not IncidentStatus.AWAITING_APPROVAL:
            raise SupervisorError(
                f"incident {incident_id!r} is {inc.status.value.replace('_', ' ')}, "
                "so there is nothing to approve or deny"
            )
        if decision == "approved":
            approvers = self.refuse_non_approver(incident_id, by, decision)
            if approvers is not None:
                raise SupervisorError(
                    f"{by!r} may not approve {incident_id!r}; approvers are {approvers}"
                )
        if not self.leading() and self.answers is not None:
            return self._queue_answer(incident_id, decision, by, comment)
        answer = Approval.model_validate(
            {"decision": decision, "by": by, "at": self.clock.now(), "comment": comment}
        )
        return self._run(incident_id, Command(resume=answer.model_dump(mode="json")))

    def _queue_answer(
        self, incident_id: str, decision: str, by: str, comment: str
    ) -> IncidentState:
        """A replica that does not lead takes an answer: it waits in Postgres for the leader
        (:meth:`apply_queued_answer`). Audited as taken, not yet applied."""
        assert self.answers is not None
        queued = QueuedAnswer.model_validate(
            {
                "incident_id": incident_id,
                "decision": decision,
                "by": by,
                "comment": comment,
                "at": self.clock.now(),
            }
        )
        if not self.answers.put(queued):
            raise SupervisorError(
                f"an answer for {incident_id!r} is already waiting for the leader replica"
            )
        self.recorder.record(
            AuditKind.APPROVAL,
            incident_id=incident_id,
            actor=by,
            data={
                "queued_for_leader": True,
                "decision": decision,
                "by": by,
                "comment": comment,
            },
        )
        return self.state(incident_id)

    def queued_answers(self) -> list[QueuedAnswer]:
        """Answers other replicas took, waiting for this one to lead (none without Postgres)."""
        return [] if self.answers is None else self.answers.waiting()

    def apply_queued_answer(self, queued: QueuedAnswer) -> IncidentState | None:
        """Leader only: resume the incident with an answer another replica took, then drop it
        from the queue. An answer for an incident no longer paused for approval (answered or
        timed out meanwhile) is dropped and audited; returns None then."""
        assert self.answers is not None
        snap = self.graph.get_state({"configurable": {"thread_id": queued.incident_id}})
        if not snap.interrupts:
            self.recorder.record(
                AuditKind.APPROVAL,
                incident_id=queued.incident_id,
                actor=queued.by,
                data={
                    "dropped": True,
                    "decision": queued.decision,
                    "reason": "the incident was no longer awaiting approval when the leader "
                    "took the queued answer",
                },
            )
            self.answers.done(queued.incident_id)
            return None
        answer = Approval.model_validate(
            {
                "decision": queued.decision,
                "by": queued.by,
                "at": queued.at,
                "comment": queued.comment,
            }
        )
        state = self._run(queued.incident_id, Command(resume=answer.model_dump(mode="json")))
        self.answers.done(queued.incident_id)
        return state

    # ------------------------------------------------------------------ graph

    def state(self, incident_id: str) -> IncidentState:
        snap = self.graph.get_state({"configurable": {"thread_id": incident_id}})
        return dict(snap.values)  # type: ignore[return-value]

    def _run(self, incident_id: str, payload: Any) -> IncidentState:
        if not self.leading():
            raise NotLeader(
                f"this replica is not the leader, so it does not run incident {incident_id!r}; "
                "the leader does (retry there, or once this replica leads)"
            )
        with self._graph_lock:
            if incident_id in self._running:
                raise SupervisorError(
                    f"incident {incident_id!r} is already running; try again shortly"
                )
            self._running.add(incident_id)
        try:
            return self._run_thread(incident_id, payload)
        finally:
            with self._graph_lock:
                self._running.discard(incident_id)

    def _run_thread(self, incident_id: str, payload: Any) -> IncidentState:
        current = self.incidents.get(incident_id)
        running = _status_while_running(payload, None if current is None else current.status)
        self.incidents.set_status(incident_id, running)
        config = {"configurable": {"thread_id": incident_id}}
        try:
            self.graph.invoke(
                payload,
                config={**config, "recursion_limit": self.config.limits.max_steps},
                context=self.context,
            )
        except VerifyPending as wait:
            with self._graph_lock:
                self._due[incident_id] = wait.due
            self.recorder.record(
                AuditKind.INCIDENT_UPDATED,
                incident_id=incident_id,
                actor="verify",
                data={
                    "verification_due": wait.due.isoformat(),
                    "detail": "waiting out the settle time after the action; verify runs then",
                },
            )
            self.incidents.set_status(incident_id, IncidentStatus.VERIFYING)
            return dict(self.graph.get_state(config).values)  # type: ignore[return-value]
        except RecheckPending as wait:
            # Nothing was proposed yet: the incident is still being investigated, and the
            # index keeps when to go on (tick() runs it then; it survives a restart).
            self.incidents.set_recheck(incident_id, wait.due)
            self.incidents.set_status(incident_id, IncidentStatus.INVESTIGATING)
            return dict(self.graph.get_state(config).values)  # type: ignore[return-value]
        snap = self.graph.get_state(config)
        state: IncidentState = dict(snap.values)  # type: ignore[assignment]
        status = IncidentStatus(state.get("status", IncidentStatus.OPEN.value))
        if snap.next:  # paused at an interrupt
            status = IncidentStatus.AWAITING_APPROVAL
        self.incidents.set_status(incident_id, status)
        return state

    def defer_verification(self) -> None:
        """From now on a verify whose settle time has not passed stops the run at its checkpoint
        instead of sleeping; :meth:`due_verifications` says when to resume it (the service)."""
        self.context = dataclasses.replace(self.context, defer_waits=True)

    def due_verifications(self) -> list[str]:
        """Incidents whose deferred verification is due now, each returned once; resume them
        with ``_run(id, None)`` (a resume that is early defers again)."""
        now = self.clock.now()
        with self._graph_lock:
            due = [i for i, when in self._due.items() if when <= now]
            for i in due:
                del self._due[i]
        return due

    def due_rechecks(self) -> list[str]:
        """Incidents whose label re-check is due now, each returned once (from the incident
        index, so a restart keeps them); resume each with ``_run(id, None)``."""
        return self.incidents.due_rechecks()

    def waiting_verification(self) -> dict[str, datetime]:
        """Deferred verifications not yet due: incident -> when."""
        with self._graph_lock:
            return dict(self._due)

    def resume_unfinished(self) -> list[str]:
        """After a restart: run every incident whose thread stopped mid-graph (not at approval)."""
        resumed: list[str] = []
        if not self.leading():
            return resumed
        for inc in self.incidents.all():
            if inc.status in {
                IncidentStatus.INVESTIGATING,
                IncidentStatus.ACTING,
                IncidentStatus.VERIFYING,
                IncidentStatus.OPEN,
            }:
                snap = self.graph.get_state({"configurable": {"thread_id": inc.id}})
                if snap.next and not snap.interrupts:
                    self._run(inc.id, None)
                    resumed.append(inc.id)
        return resumed

    def shared_document(self, name: str) -> PostgresDocument | None:
        """A JSON document replicas share (Postgres), or None when state is per directory."""
        return None if self._shared is None else PostgresDocument(self._shared.pool, name)

    def ping_shared(self) -> None:
        """One round trip to the Postgres that replicas share (readiness); raises if it fails."""
        if self._shared is None:
            return
        with self._shared.pool.connection(timeout=5) as conn:
            conn.execute("SELECT 1")

    @property
    def shared(self) -> bool:
        """Whether replicas share this supervisor's state (Postgres)."""
        return self._shared is not None

    def close(self) -> None:
        self.tracing.force_flush()
        self.audit.close()
        if self._db is not None:
            self._db.close()
        if self._shared is not None:
            self._shared.close()


def _status_while_running(payload: Any, current: IncidentStatus | None) -> IncidentStatus:
    """What an incident is while a run is under way, so that readers (the API, Slack) see where
    it is: a new thread investigates; an approval resumes into the action. Anything else keeps
    its status until the run ends: a denial escalates in the same step, a deferred verification
    is still verifying, a recovered run is where it was interrupted."""
    if isinstance(payload, Command):
        resume = payload.resume
        if isinstance(resume, dict) and resume.get("decision") == "approved":
            return IncidentStatus.ACTING
    elif payload is not None:  # a new thread
        return IncidentStatus.INVESTIGATING
    if current is None or current is IncidentStatus.OPEN:
        return IncidentStatus.INVESTIGATING
    return current
