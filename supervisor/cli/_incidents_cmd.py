"""``incidents``: the incidents of a run (``--state DIR``) or of a service (``--service URL``).

``--state`` reads ``incidents.json`` and, for incidents awaiting approval, the last
``approval_requested`` record of ``audit.jsonl`` with the standard library only: listing must
not load the runtime (LangGraph, scikit-learn, Evidently), which takes seconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from supervisor._errors import SupervisorError

#: The fields of an incident row, in the order shown; ``--json`` carries them all.
_COLUMNS = (("ID", "id"), ("STATUS", "status"), ("MODEL", "where"), ("SYMPTOM", "symptom"))


def incidents_from_state(state: Path) -> list[dict[str, Any]]:
    """The incidents of a run's state directory, oldest first, each with ``pending_approval``
    (action, approvers, deadline) or None. Raises :class:`SupervisorError` if there is none."""
    path = state / "incidents.json"
    try:
        rows: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SupervisorError(
            f"{str(state)!r} holds no incidents.json; pass the state directory of a run "
            "(e.g. demo-out/state)"
        ) from None
    except (OSError, ValueError) as err:
        raise SupervisorError(f"cannot read {str(path)!r}: {err}") from err
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "id" in r for r in rows):
        raise SupervisorError(f"{str(path)!r} is not a list of incidents")
    waiting = {r["id"] for r in rows if r.get("status") == "awaiting_approval"}
    pending = _pending_from_audit(state / "audit.jsonl", waiting) if waiting else {}
    return [{**r, "pending_approval": pending.get(r["id"])} for r in rows]


def _pending_from_audit(path: Path, waiting: set[str]) -> dict[str, dict[str, Any]]:
    """The last approval request (and the decision's action) of each waiting incident."""
    action: dict[str, Any] = {}
    found: dict[str, dict[str, Any]] = {}
    try:
        with path.open("rb") as f:
            for raw in f:
                try:
                    rec = json.loads(raw)
                except ValueError:
                    continue  # a torn line: `audit verify` and `audit repair` deal with it
                inc = rec.get("incident_id") if isinstance(rec, dict) else None
                if inc not in waiting:
                    continue
                data = rec.get("data") or {}
                if rec.get("kind") == "decision":
                    action[inc] = (data.get("decision") or {}).get("action")
                elif rec.get("kind") == "approval_requested":
                    found[inc] = {
                        "approvers": data.get("approvers") or [],
                        "deadline": data.get("deadline"),
                    }
    except FileNotFoundError:
        return {}
    return {inc: {"action": action.get(inc), **p} for inc, p in found.items()}


def print_incidents(
    rows: Iterable[dict[str, Any]], *, as_json: bool, out: TextIO | None = None
) -> int:
    """Print incident rows as aligned columns, then the approvals they wait for; or, with
    ``as_json``, as one JSON array (the rows as stored, each with ``pending_approval``)."""
    stream = out if out is not None else sys.stdout
    rows = list(rows)
    if as_json:
        json.dump(rows, stream, indent=1, sort_keys=True, ensure_ascii=False)
        stream.write("\n")
        return 0
    if not rows:
        print("(no incidents)", file=stream)
        return 0
    from supervisor.text import render

    stream.write(render("incidents.txt.j2", header=_COLUMNS, table=_table(rows), rows=rows))
    return 0


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """Header and rows padded to aligned columns (OPENED last, unpadded)."""
    cells = [[h for h, _ in _COLUMNS] + ["OPENED (UTC)"]]
    for r in rows:
        shown = {
            **{k: str(r.get(k, "")) for k in ("id", "status", "symptom")},
            "where": f"{r.get('environment', '')}/{r.get('model', '')}",
        }
        opened = str(r.get("opened_at", ""))[:16].replace("T", " ")
        cells.append([shown[k] for _, k in _COLUMNS] + [opened])
    widths = [max(len(c[i]) for c in cells) for i in range(len(_COLUMNS))]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in cells
    ]
