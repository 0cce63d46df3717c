"""Late labels: a retrain decided before the drifted rows have labels waits for them.

A retrain fits the labelled rows of its window (``_propose._labelled_window_hours``: the label
lag plus a quarter hour). Right after an incident opens, those labelled rows predate it: the
new model would learn the old world, fail validation, and waste a retrain or a page. So when
the labels of the rows after the incident opened are not in yet, the decision is postponed:
the diagnosis says when they arrive, the graph stops, and the investigation runs again then
on fresh evidence. The wait is bounded: past ``quality.max_label_wait_minutes`` after the
incident opened the supervisor decides on what it has and pages the owner instead.

The incident's opening time bounds the drift's onset from above (the drift was there when the
check or the alert saw it), so rows after it are post-onset rows whatever the true onset. When
the supervisor's own drift check saw the drift earlier (and held the incident back for its
labels), rows after that first sighting count instead; an alert's annotations are untrusted
text and never move it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from supervisor.config import WatchedModel
from supervisor.domain import ActionType, Incident, Signal, SignalKind, ToolResult
from supervisor.incidents import DRIFT_SINCE
from supervisor.reasoners import Finding
from supervisor.text import render

#: How many times one incident may wait for labels. The first wait uses the declared or
#: measured lag; a second covers labels later than declared (the tool then measures the lag);
#: a third would mean the lag keeps moving, which a person should look at.
MAX_RECHECKS = 2


@dataclass(frozen=True)
class LabelWait:
    """Why and until when a decision waits for late labels."""

    due: datetime
    rows_after: datetime
    labels_at: datetime
    lag_minutes: float
    lag_source: str
    margin_minutes: float
    deadline: datetime
    past_deadline: bool

    def sentence(self) -> str:
        """The wait in plain words (template ``recheck.txt.j2``)."""
        return render(
            "recheck.txt.j2",
            past_deadline=self.past_deadline,
            rows_after=self.rows_after,
            labels_at=self.labels_at,
            due=self.due,
            lag=self.lag_minutes,
            source=self.lag_source,
            margin=self.margin_minutes,
            deadline=self.deadline,
        ).strip()

    def record(self) -> dict[str, object]:
        """The audit record's data."""
        return {
            "recheck_at": self.due.isoformat(),
            "rows_after": self.rows_after.isoformat(),
            "labels_at": self.labels_at.isoformat(),
            "label_lag_minutes": self.lag_minutes,
            "label_delay_source": self.lag_source,
            "margin_minutes": self.margin_minutes,
            "deadline": self.deadline.isoformat(),
            "past_deadline": self.past_deadline,
            "detail": self.sentence(),
        }


def label_wait(
    incident: Incident,
    finding: Finding,
    watched: WatchedModel,
    results: Sequence[ToolResult],
    now: datetime,
    signal: Signal | None = None,
) -> LabelWait | None:
    """The wait a decision needs for its labels, or None when it can be decided now.

    Only a retrain needs labels of the drifted rows (escalate, roll back, abort: none). The
    label lag is the model's declared delay (``quality.label_delay_minutes``) or the lag
    ``get_model_quality`` measured, whichever is longer: labels later than declared are
    waited for as they really come. No declared delay and no quality result with a lag:
    nothing to wait for (no labels are coming that the evidence knows of), decide now.
    """
    if finding.action is not ActionType.RETRAIN:
        return None
    lags = [
        (float(r.data["label_lag_minutes"]), str(r.data.get("label_delay_source", "measured")))
        for r in results
        if r.ok and r.tool == "get_model_quality" and "label_lag_minutes" in r.data
    ]
    declared = watched.quality.label_delay_minutes
    if declared is not None:
        lags.append((float(declared), "declared"))
    if not lags:
        return None
    # Longest first; on a tie the declared delay names the source.
    lag, source = max(lags, key=lambda x: (x[0], x[1] == "declared"))
    margin = watched.quality.recheck_margin_minutes
    rows_after = min(incident.opened_at, _drift_since(signal) or incident.opened_at)
    labels_at = rows_after + timedelta(minutes=lag)
    due = labels_at + timedelta(minutes=margin)
    if now >= due:
        return None
    deadline = incident.opened_at + timedelta(minutes=watched.quality.max_label_wait_minutes)
    return LabelWait(
        due=due,
        rows_after=rows_after,
        labels_at=labels_at,
        lag_minutes=lag,
        lag_source=source,
        margin_minutes=margin,
        deadline=deadline,
        past_deadline=due > deadline,
    )


def _drift_since(signal: Signal | None) -> datetime | None:
    """When the supervisor's own drift check first saw the drift (None for alerts)."""
    if signal is None or signal.kind is not SignalKind.CHECK or signal.source != "scheduler":
        return None
    raw = signal.annotations.get(DRIFT_SINCE)
    try:
        return None if raw is None else datetime.fromisoformat(raw)
    except ValueError:
        return None


def escalate_instead(finding: Finding, wait: LabelWait) -> Finding:
    """The finding with its retrain replaced by a page: its labels come past the maximum
    wait, so a retrain now would fit the old world and waiting longer leaves users unserved."""
    diagnosis = finding.diagnosis.model_copy(
        update={"summary": f"{finding.diagnosis.summary} {wait.sentence()}"}
    )
    return finding.model_copy(
        update={
            "diagnosis": diagnosis,
            "action": ActionType.ESCALATE,
            "parameters": {"page": "owner"},
            "rationale": f"{finding.rationale} Not retrained: {wait.sentence()}",
        }
    )


def waiting(finding: Finding, wait: LabelWait) -> Finding:
    """The finding with the wait said in its diagnosis (the report and the audit show it)."""
    diagnosis = finding.diagnosis.model_copy(
        update={"summary": f"{finding.diagnosis.summary} {wait.sentence()}"}
    )
    return finding.model_copy(update={"diagnosis": diagnosis})
