"""Hybrid reasoning: the playbooks first; the LLM only when no playbook explains the evidence
with enough confidence (and, optionally, to write the human explanation of a rules diagnosis).

Also :func:`build_reasoner`, which turns the config's ``reasoner`` setting into a reasoner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from opentelemetry.trace import Tracer

from supervisor._errors import ConfigError
from supervisor._recorder import Recorder
from supervisor._shared import SharedDocument
from supervisor.config import Limits
from supervisor.domain import AuditKind, Incident, RootCause
from supervisor.llm import (
    ChatClient,
    DailyTokenBudget,
    LLMConfig,
    LLMUsage,
    build_chat_client,
    data_block,
)

from ._base import Finding, Reasoner
from ._llm import LLMCallback, LLMReasoner, _relabel
from ._playbook import PlaybookSet
from ._rules import RulesReasoner
from ._session import InvestigationSession


class HybridReasoner:
    """Rules first; the LLM when the rules do not settle it.

    Args:
        rules: The deterministic reasoner (playbooks).
        llm: The LLM reasoner, asked when the rules' diagnosis is insufficient_evidence or below
            ``min_confidence``; it sees the tool results the rules already received.
        min_confidence: Rules diagnoses at or above it stand; default ``llm.hybrid_min_confidence``.
        explain: Ask the LLM to explain a standing rules diagnosis (prose only: the root cause,
            action and evidence do not change); default ``llm.hybrid_explain``.
    """

    name = "hybrid"

    def __init__(
        self,
        rules: Reasoner,
        llm: LLMReasoner,
        *,
        min_confidence: float | None = None,
        explain: bool | None = None,
    ) -> None:
        self.rules = rules
        self.llm = llm
        self.min_confidence = (
            llm.config.hybrid_min_confidence if min_confidence is None else min_confidence
        )
        self.explain = llm.config.hybrid_explain if explain is None else explain
        llm.name = self.name

    @property
    def on_llm_call(self) -> LLMCallback | None:
        """The LLM reasoner's audit callback (settable, like :attr:`LLMReasoner.on_llm_call`)."""
        return self.llm.on_llm_call

    @on_llm_call.setter
    def on_llm_call(self, callback: LLMCallback | None) -> None:
        self.llm.on_llm_call = callback

    @property
    def usage(self) -> dict[str, LLMUsage]:
        """LLM usage per incident (incidents the rules settled without an explanation: none)."""
        return self.llm.usage

    def usage_for(self, incident_id: str) -> LLMUsage:
        return self.llm.usage_for(incident_id)

    def investigate(self, incident: Incident, session: InvestigationSession) -> Finding:
        ruled = self.rules.investigate(incident, session)
        diagnosis = ruled.diagnosis
        if (
            diagnosis.root_cause is not RootCause.INSUFFICIENT_EVIDENCE
            and diagnosis.confidence >= self.min_confidence
        ):
            settled = _relabel(ruled, f"{self.name}:rules")
            return self._explained(incident, session, settled) if self.explain else settled
        context = (
            "The deterministic playbooks did not settle this incident. Their verdict (data):\n\n"
            + data_block(
                "rules-verdict",
                {
                    "root_cause": diagnosis.root_cause.value,
                    "confidence": diagnosis.confidence,
                    "summary": diagnosis.summary,
                    "ruled_out": [r.model_dump(mode="json") for r in diagnosis.ruled_out],
                },
                limit=self.llm.config.max_tool_output_chars,
            )[0]
        )
        found = self.llm.investigate_with(incident, session, context=context)
        if found.diagnosis.root_cause is RootCause.INSUFFICIENT_EVIDENCE:
            # Neither settles it: keep the rules' account of what was ruled out, and say both tried.
            summary = (
                f"{diagnosis.summary} The LLM did not settle it either: {found.diagnosis.summary}"
            )
            return _relabel(
                ruled.model_copy(
                    update={"diagnosis": diagnosis.model_copy(update={"summary": summary})}
                ),
                f"{self.name}:rules",
            )
        known = {r.root_cause for r in found.diagnosis.ruled_out} | {found.diagnosis.root_cause}
        merged = [*found.diagnosis.ruled_out] + [
            r for r in diagnosis.ruled_out if r.root_cause not in known
        ]
        return _relabel(
            found.model_copy(
                update={"diagnosis": found.diagnosis.model_copy(update={"ruled_out": merged})}
            ),
            f"{self.name}:llm",
        )

    def _explained(
        self, incident: Incident, session: InvestigationSession, finding: Finding
    ) -> Finding:
        text = self.llm.explain(incident, session, finding)
        if not text:
            return finding
        summary = f"{finding.diagnosis.summary}\n\nExplanation (LLM, advisory): {text}"
        return finding.model_copy(
            update={"diagnosis": finding.diagnosis.model_copy(update={"summary": summary})}
        )


ReasonerKind = Literal["rules", "llm", "hybrid"]


def build_reasoner(
    kind: ReasonerKind,
    playbooks: PlaybookSet,
    llm: LLMConfig,
    limits: Limits,
    *,
    client: ChatClient | None = None,
    record_dir: Path | None = None,
    replay_dir: Path | None = None,
    budget_path: Path | None = None,
    budget_shared: SharedDocument | None = None,
    now: Callable[[], datetime] | None = None,
    on_llm_call: LLMCallback | None = None,
    tracer: Tracer | None = None,
    sleep: Callable[[float], None] | None = None,
) -> RulesReasoner | LLMReasoner | HybridReasoner:
    """The reasoner the config asks for (``reasoner: rules | llm | hybrid``).

    Args:
        kind: ``config.reasoner`` (or the ``eval --reasoner`` flag).
        playbooks: The loaded playbooks (rules and hybrid).
        llm: ``config.llm``; llm and hybrid need ``llm.model``.
        limits: ``config.limits`` (its ``max_retries`` is the retry bound per LLM call).
        client: A chat client to use instead of building one (tests, custom transports).
        record_dir: Record every LLM exchange here (``--record DIR``).
        replay_dir: Replay LLM exchanges from here, offline (``--replay DIR``).
        budget_path: File that keeps the daily token spend across restarts (in the state dir).
        budget_shared: The spend in a document replicas share (Postgres), instead of the file.
        now: Clock for the daily budget's day; default: UTC wall time.
        on_llm_call: Audit callback, see :class:`LLMReasoner`.
        tracer: Tracer for LLM spans.
        sleep: How retries wait (tests inject a recorder).
    """
    if kind == "rules":
        return RulesReasoner(playbooks)
    if kind not in ("llm", "hybrid"):
        raise ConfigError(f"unknown reasoner {kind!r}; use rules, llm or hybrid")
    if llm.model is None:
        raise ConfigError(
            f"reasoner {kind!r} needs an LLM: set llm.model (and llm.base_url), e.g. with "
            "MLOPS_SUPERVISOR_LLM__MODEL, or use reasoner: rules"
        )
    if client is None:
        extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
        client = build_chat_client(
            llm,
            max_retries=limits.max_retries,
            record_dir=record_dir,
            replay_dir=replay_dir,
            **extra,
        )
    if now is None:
        from supervisor._clock import SystemClock

        now = SystemClock().now
    budget = DailyTokenBudget(llm.daily_token_budget, now, budget_path, shared=budget_shared)
    reasoner = LLMReasoner(client, llm, budget=budget, on_llm_call=on_llm_call, tracer=tracer)
    if kind == "llm":
        return reasoner
    return HybridReasoner(RulesReasoner(playbooks), reasoner)


def llm_audit_sink(recorder: Recorder) -> LLMCallback:
    """An ``on_llm_call`` that writes each LLM event as a ``reasoner_step`` audit record."""

    def record(event: dict[str, Any]) -> None:
        data = {k: v for k, v in event.items() if k not in ("incident_id", "reasoner")}
        recorder.record(
            AuditKind.REASONER_STEP,
            incident_id=event.get("incident_id"),
            actor=str(event.get("reasoner", "llm")),
            data=data,
        )

    return record
