"""The service's moving parts: intake (fast, on a request thread), incident workers, the
scheduler, approvals, recovery after a restart, and /metrics observation."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from supervisor._clock import SimClock
from supervisor._errors import SupervisorError
from supervisor.domain import (
    ActionType,
    AuditKind,
    Incident,
    IncidentStatus,
    OutcomeStatus,
    Signal,
    ToolStatus,
    Verdict,
)
from supervisor.incidents import ENDED
from supervisor.metrics import SupervisorMetrics
from supervisor.runtime import Supervisor

from ._alertmanager import WebhookPayload, signals_from_webhook
from ._scheduler import Scheduler
from ._workers import WorkerPool

log = logging.getLogger("mlops_supervisor.service")


class ApprovalRefused(SupervisorError):
    """An approval request the service refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServiceRuntime:
    """Takes notifications in and hands incidents to a bounded pool of graph workers.

    ``stopping`` is the event the backends' clock watches: setting it at shutdown ends every
    sleep (retry backoffs) at once, so those incidents stop at their last checkpoint instead of
    holding the shutdown. Verify settle times are not slept on a worker at all
    (``defer_verification``): the run stops after the action and a timer resumes it when due.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        workers: int,
        metrics: SupervisorMetrics | None = None,
        *,
        stopping: threading.Event | None = None,
        defer_verification: bool | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.metrics = metrics or SupervisorMetrics(
            models=[m.name for m in supervisor.config.models]
        )
        self.stopping = stopping or threading.Event()
        self._pool = WorkerPool(workers, on_done=self.observe)
        self._scheduler = Scheduler(
            supervisor.config.service.check_interval_seconds, self.run_checks, self.stopping
        )
        # Replicas sharing Postgres: the leader picks up what the others recorded.
        self._pickup = Scheduler(
            supervisor.config.ha.pickup_interval_seconds if supervisor.shared else 0,
            self.pickup,
            self.stopping,
            name="pickup",
        )
        self._was_leading = False
        self._started_here: set[str] = set()
        # Verify waits its settle time off the workers: the run stops after the action and
        # this timer resumes it when due (a worker asleep for 10 minutes per incident would
        # starve new incidents during a storm). Default: on, unless the clock is simulated
        # (a SimClock's sleep moves time at once and costs nothing).
        if defer_verification is None:
            defer_verification = not isinstance(supervisor.clock, SimClock)
        if defer_verification:
            supervisor.defer_verification()
        self._timer = Scheduler(
            1.0 if defer_verification else 0, self.resume_due, self.stopping, name="verify timer"
        )
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self.notifications = 0
        self._observed: set[int] = set()
        #: Called with an incident id after each of its graph runs (e.g. Slack updates).
        self.listeners: list[Callable[[str], object]] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> list[str]:
        """Recover what a previous process left unfinished, then start the scheduler.

        Returns the incidents handed to the workers for recovery. Idempotent.
        """
        with self._lock:
            if self._started:
                return []
            self._started = True
        recovered = self.recover() if self.supervisor.leading() else []
        self._was_leading = self.supervisor.leading()
        self._scheduler.start()
        self._pickup.start()
        self._timer.start()
        return recovered

    def recover(self, *, everything: bool = True) -> list[str]:
        """Queue every incident a previous process (or leader) left mid-graph (resumed from
        its last checkpoint) or never started (run from its opening signal). Paused approvals
        stay paused. ``everything=False`` (the leader's pickup passes): only incidents never
        started, and never one this process started before."""
        sup = self.supervisor
        queued = []
        for inc in sup.incidents.all():
            if inc.status in ENDED or inc.status is IncidentStatus.AWAITING_APPROVAL:
                continue
            if self._pool.busy(inc.id):
                continue
            snap = sup.graph.get_state({"configurable": {"thread_id": inc.id}})
            if snap.next and not snap.interrupts:
                if not everything:
                    continue
                # Supervisor.resume_unfinished() does this for every incident in a loop on one
                # thread; one job per incident keeps a long settle from delaying the others.
                job = _resume_job(sup, inc.id)
                what = "resume from checkpoint"
            elif not snap.values:
                if inc.id in self._started_here and not everything:
                    continue  # started here already; a run that failed is not retried
                signal = self._opening_signal(inc)
                if signal is None:
                    log.error("incident %s has no opening signal in the audit log", inc.id)
                    continue
                job = _start_job(sup, inc, signal)
                what = "start (never ran)"
            else:
                continue
            if self._pool.submit(inc.id, what, job):
                self._started_here.add(inc.id)
                queued.append(inc.id)
        if queued:
            log.info("recovering %d incident(s): %s", len(queued), queued)
        return queued

    def resume_due(self) -> list[str]:
        """Resume the incidents whose verification is due (the verify timer's pass)."""
        sup = self.supervisor
        queued = []
        for incident_id in sup.due_verifications():
            if self._pool.submit(incident_id, "verify", _resume_job(sup, incident_id)):
                queued.append(incident_id)
            # else: running already (a resume that raced the timer), or shutting down (the
            # next start resumes it from its checkpoint)
        return queued

    def pickup(self) -> list[str]:
        """One pass of the leader's pickup (replicas sharing Postgres): on becoming leader,
        resume everything the last leader left unfinished; then start the incidents other
        replicas opened and apply the approval answers they took. A follower does nothing.
        Returns the incidents queued."""
        sup = self.supervisor
        leading = sup.leading()
        became, self._was_leading = leading and not self._was_leading, leading
        if not leading:
            return []
        queued = self.recover(everything=became)
        for answer in sup.queued_answers():
            if self._pool.submit(
                answer.incident_id,
                answer.decision,
                lambda a=answer: sup.apply_queued_answer(a),  # type: ignore[misc]
            ):
                queued.append(answer.incident_id)
        return queued

    def shutdown(self, grace: float | None = None) -> list[str]:
        """Stop the scheduler and the workers: sleeping incidents stop at once at their last
        checkpoint, running ones get ``grace`` seconds (config default) to finish. Returns the
        incidents left running (they resume on the next start). Idempotent."""
        with self._lock:
            if self._closed:
                return []
            self._closed = True
        if grace is None:
            grace = self.supervisor.config.service.shutdown_grace_seconds
        self.stopping.set()
        self._scheduler.stop(timeout=grace)
        self._pickup.stop(timeout=grace)
        self._timer.stop(timeout=grace)
        left = self._pool.close(grace)
        if left:
            log.warning("shutdown: %s still running; they resume from checkpoint on restart", left)
        self.supervisor.incidents.flush()
        return left

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` began."""
        return self._closed

    def drain(self, timeout: float | None = None) -> None:
        """Wait until no incident is queued or running (tests, benchmarks)."""
        if not self._pool.drain(timeout):
            raise TimeoutError(f"incidents still running after {timeout} s: {self._pool.active()}")

    # ------------------------------------------------------------------ signals

    def intake(self, payload: WebhookPayload) -> dict[str, Any]:
        """Record every alert of a notification; start a graph for each new incident."""
        sup = self.supervisor
        # One wait for the disk per notification, after every record of it is written, and one
        # write of the incident index, after them.
        with sup.audit.deferred_sync(), sup.incidents.batched():
            return self._intake(payload)

    def _intake(self, payload: WebhookPayload) -> dict[str, Any]:
        sup = self.supervisor
        signals, unmapped = signals_from_webhook(
            payload, sup.config.service.intake, sup.clock.now()
        )
        with self._lock:
            self.notifications += 1
        for u in unmapped:
            sup.recorder.record(
                AuditKind.SIGNAL,
                incident_id=None,
                actor="alertmanager",
                data={
                    "group_key": payload.groupKey,
                    "fingerprint": u.fingerprint,
                    "labels": u.labels,
                    "disposition": f"ignored: {u.reason}",
                },
            )
        incidents: list[str] = []
        opened: list[str] = []
        for signal in signals:
            incident_id, is_new = self.accept(signal)
            if incident_id is None:
                continue
            incidents.append(incident_id)
            if is_new:
                opened.append(incident_id)
        return {
            "alerts": len(payload.alerts),
            "signals": len(signals),
            "ignored": len(unmapped),
            "incidents": sorted(set(incidents)),
            "opened": opened,
        }

    def accept(self, signal: Signal) -> tuple[str | None, bool]:
        """Record and deduplicate one signal; a new incident is queued for the workers."""
        incident, is_new = self.supervisor.ingest(signal)
        if incident is None:
            return None, False
        # A replica that does not lead only records: the leader's pickup starts the incident.
        if is_new and self.supervisor.leading():
            # Refused only while shutting down: the incident is recorded as open and
            # recover() starts it on the next start.
            job = _start_job(self.supervisor, incident, signal)
            if self._pool.submit(incident.id, "start", job):
                self._started_here.add(incident.id)
        return incident.id, is_new

    def run_checks(self) -> int:
        """One scheduler pass: expire stale approvals, run the scheduled checks of every
        watched model that has no open incident, and queue what they find. Returns how many
        signals the checks raised.

        Like :meth:`Supervisor.tick`, except that new incidents go to the workers instead of
        running on this thread, so one incident's settle time never delays the next pass.
        """
        sup = self.supervisor
        if not sup.leading():
            return 0  # the leader checks; its findings are shared
        for incident_id in sup.expire_approvals():
            self.observe(incident_id)
        for incident_id in sup.due_rechecks():  # decisions that waited for late labels
            if not self._pool.submit(incident_id, "label re-check", _resume_job(sup, incident_id)):
                sup.incidents.set_recheck(incident_id, sup.clock.now())  # busy: next pass
        busy = {(i.model, i.environment) for i in sup.incidents.all() if i.status not in ENDED}
        signals = sup.checker.run(busy)
        for signal in signals:
            self.accept(signal)
        return len(signals)

    def _opening_signal(self, inc: Incident) -> Signal | None:
        records = self.supervisor.audit.find(
            AuditKind.SIGNAL, incident_id=inc.id, where={"disposition": "opened"}
        )
        return Signal.model_validate(records[0].data["signal"]) if records else None

    # ------------------------------------------------------------------ approvals

    def answer(
        self, incident_id: str, decision: Literal["approved", "denied"], by: str, comment: str
    ) -> None:
        """Check an approval answer and queue it; the graph resumes on a worker.

        Raises :class:`ApprovalRefused` with 404 (no such incident), 409 (not awaiting
        approval, or an answer is already being applied) or 403 (``by`` is not an approver
        of the pending decision; the refusal is audited).
        """
        sup = self.supervisor
        inc = sup.incidents.get(incident_id)
        if inc is None:
            raise ApprovalRefused(404, f"no incident {incident_id!r}")
        if inc.status is not IncidentStatus.AWAITING_APPROVAL:
            raise ApprovalRefused(
                409,
                f"incident {incident_id!r} is {inc.status.value.replace('_', ' ')}, "
                "so there is nothing to approve or deny",
            )
        if self._pool.busy(incident_id):
            raise ApprovalRefused(
                409, f"incident {incident_id!r} is already taking an answer; wait for it to finish"
            )
        # Deny is gated too: an unauthorised "deny" would block a remediation just as an
        # unauthorised "approve" would start one.
        approvers = sup.refuse_non_approver(incident_id, by, decision, via="http")
        if approvers is not None:
            raise ApprovalRefused(
                403, f"{by!r} may not answer for {incident_id!r}; approvers are {approvers}"
            )
        if not sup.leading() and sup.answers is not None and sup.answers.pending_for(incident_id):
            raise ApprovalRefused(
                409, f"an answer for {incident_id!r} is already waiting for the leader replica"
            )
        run = sup.approve if decision == "approved" else sup.deny
        if not self._pool.submit(incident_id, decision, lambda: run(incident_id, by, comment)):
            if self._closed:  # the approval still pends; the next process takes the answer
                raise ApprovalRefused(503, "the service is stopping; answer again shortly")
            raise ApprovalRefused(409, f"an answer for {incident_id!r} is already being applied")

    # ------------------------------------------------------------------ metrics

    def observe(self, incident_id: str) -> None:
        """Bring /metrics up to date with what an incident's runs recorded (each record once),
        then tell the listeners."""
        self._count(incident_id)
        for listener in self.listeners:
            try:
                listener(incident_id)
            except Exception:  # a chat outage must not stop the incident loop; it is logged
                log.exception("listener failed for incident %s", incident_id)

    def _count(self, incident_id: str) -> None:
        sup, m = self.supervisor, self.metrics
        self.refresh_incident_gauges()
        current = sup.incidents.get(incident_id)
        if current is not None:
            m.incident_entered(current.status)
        records = sup.audit.records(incident_id)
        opened = next((r for r in records if r.kind is AuditKind.INCIDENT_OPENED), None)
        with self._lock:
            fresh = [r for r in records if r.seq not in self._observed]
            self._observed.update(r.seq for r in fresh)
        for r in fresh:
            if r.kind is AuditKind.DECISION:
                decision = r.data["decision"]
                m.guard_decision(Verdict(decision["verdict"]), ActionType(decision["action"]))
                if opened is not None:
                    m.observe_decision_latency((r.ts - opened.ts).total_seconds())
            elif r.kind is AuditKind.ACTION_OUTCOME:
                outcome = r.data["outcome"]
                m.action_outcome(ActionType(outcome["action"]), OutcomeStatus(outcome["status"]))
            elif r.kind is AuditKind.TOOL_CALL:
                m.tool_call(r.data["tool"], ToolStatus(r.data["status"]))
            elif r.kind is AuditKind.REASONER_STEP and r.data.get("event") == "llm_usage":
                m.add_llm_tokens(
                    prompt=int(r.data.get("input_tokens") or 0),
                    completion=int(r.data.get("output_tokens") or 0),
                )

    def refresh_incident_gauges(self) -> None:
        """Set the incidents-by-state gauges from the incident index."""
        self.metrics.set_incidents(Counter(i.status for i in self.supervisor.incidents.all()))


def _start_job(sup: Supervisor, incident: Incident, signal: Signal) -> Any:
    return lambda: sup.start(incident, signal)


def _resume_job(sup: Supervisor, incident_id: str) -> Any:
    # Supervisor has no public single-incident resume; _run(id, None) is what
    # resume_unfinished() calls for each incident.
    return lambda: sup._run(incident_id, None)
