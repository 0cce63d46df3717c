"""The demo's live terminal timeline (rich when attached to a terminal, plain text otherwise)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from supervisor.audit import VerifyResult
from supervisor.domain import AuditKind, AuditRecord, Incident

_STYLE = {
    AuditKind.INCIDENT_OPENED: "bold yellow",
    AuditKind.DIAGNOSIS: "cyan",
    AuditKind.PROPOSAL: "magenta",
    AuditKind.DECISION: "bold",
    AuditKind.APPROVAL_REQUESTED: "yellow",
    AuditKind.APPROVAL: "green",
    AuditKind.ACTION_OUTCOME: "bold green",
    AuditKind.VERIFICATION: "green",
    AuditKind.ESCALATION: "bold red",
    AuditKind.REPORT: "dim",
}
_SHOWN = set(_STYLE)


class Timeline:
    """Prints the steps that matter to a human; the audit log keeps every step."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(highlight=False, soft_wrap=True)

    def header(self, seed: int, start: datetime, models: list[str]) -> None:
        self.console.print(
            f"[bold]mlops-supervisor demo[/] · simulated world seed {seed} · "
            f"watching {', '.join(models)} · sim start {start:%Y-%m-%d %H:%M} UTC"
        )

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"           [bold green]>>[/] {text}")

    def records(self, records: list[AuditRecord]) -> None:
        if self.quiet:
            return
        for r in records:
            if r.kind not in _SHOWN:
                continue
            line = _line(r)
            if line:
                self.console.print(
                    f"[dim]{r.ts:%H:%M}[/] {r.incident_id or '-':<15} [{_STYLE[r.kind]}]{line}[/]",
                    markup=True,
                )

    def summary(
        self,
        incidents: list[Incident],
        reports: list[Path],
        result: VerifyResult,
        state_dir: Path,
        seconds: float,
        *,
        store: list[str] | None = None,
    ) -> None:
        c = self.console
        c.print()
        c.print("[bold]Incidents[/]")
        for i in incidents:
            c.print(f"  {i.id:<15} {i.model:<8} {i.symptom.value:<16} -> {i.status.value}")
        c.print(f"[bold]Reports[/]   {len(reports)} in {state_dir / 'reports'}")
        c.print(
            f"[bold]Audit[/]     {state_dir / 'audit.jsonl'}: "
            + ("[green]verified[/], " if result.ok else "[red]FAILED[/], ")
            + f"{result.records} records"
            + ("" if result.ok else f" ({result.reason})")
        )
        c.print(f"[bold]Traces[/]    {state_dir / 'traces.jsonl'}")
        for n, line in enumerate(store or []):
            c.print(("[bold]MLflow[/]    " if n == 0 else " " * 10) + _esc(line))
        c.print(f"[dim]finished in {seconds:.1f} s[/]")


def _line(r: AuditRecord) -> str:
    d: dict[str, Any] = r.data
    if r.kind is AuditKind.INCIDENT_OPENED:
        inc = d["incident"]
        return f"incident opened: {inc['model']} {inc['symptom']}"
    if r.kind is AuditKind.DIAGNOSIS:
        diag = d["diagnosis"]
        summary = _esc(diag["summary"][:160])
        return f"diagnosis: {diag['root_cause']} (confidence {diag['confidence']:.2f}) {summary}"
    if r.kind is AuditKind.PROPOSAL:
        plan = d["plan"]
        version = plan["target"].get("version") or ""
        return f"proposal: {plan['action']} {version} — {_esc(plan['expected_effect'])}"
    if r.kind is AuditKind.DECISION:
        dec = d["decision"]
        return f"guard: {dec['verdict'].upper()} by {', '.join(dec['rule_ids'])}"
    if r.kind is AuditKind.APPROVAL_REQUESTED:
        return f"waiting for approval by one of {d['approvers']}"
    if r.kind is AuditKind.APPROVAL:
        if d.get("refused"):
            return f"approval refused: {d['reason']}"
        return f"approval: {d['approval']['decision']} by {d['approval']['by']}"
    if r.kind is AuditKind.ACTION_OUTCOME:
        o = d["outcome"]
        return f"action {o['action']}: {o['status']} — {_esc(o['detail'][:140])}"
    if r.kind is AuditKind.VERIFICATION:
        return (
            "verified: symptom cleared" if d["passed"] else "verification FAILED: symptom remains"
        )
    if r.kind is AuditKind.ESCALATION:
        return f"escalated to {d['owner']}: {_esc(d['reason'][:140])}"
    if r.kind is AuditKind.REPORT:
        return f"report written ({d['status']})"
    return ""


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
