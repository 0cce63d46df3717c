"""The served OpenAPI document declares every body and answer; bearer refusals are audited,
at most one record a window per route (issue 14 L5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from servicekit import auth, make_service

from supervisor.domain import AuditKind
from supervisor.service._app import REFUSAL_SOURCES, RefusalTally

ROUTES = {
    ("post", "/alerts"): ("WebhookPayload", {"200", "401", "413", "422", "503"}),
    ("post", "/pause"): ("PauseRequest", {"200", "401", "403", "404", "413", "422", "503"}),
    ("post", "/resume"): ("PauseRequest", {"200", "401", "403", "404", "413", "422", "503"}),
    ("post", "/incidents/{incident_id}/approve"): (
        "ApprovalAnswer",
        {"202", "401", "403", "404", "409", "413", "422", "503"},
    ),
    ("post", "/incidents/{incident_id}/deny"): (
        "ApprovalAnswer",
        {"202", "401", "403", "404", "409", "413", "422", "503"},
    ),
}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_TOKEN", "am-token-0123456789")
    app, runtime, backends = make_service(
        tmp_path, service={"intake": {"token_env": "ALERTS_TOKEN"}}
    )
    yield app, runtime
    runtime.shutdown()
    runtime.supervisor.close()
    backends.close()


def test_the_served_document_declares_each_body_and_status(served: Any) -> None:
    app, _ = served
    with TestClient(app) as client:
        doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for (method, path), (body, statuses) in ROUTES.items():
        op = doc["paths"][path][method]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{body}" and op["requestBody"]["required"]
        assert set(op["responses"]) == statuses, path
        assert op["security"] == [{"bearer": []}]
        for status in statuses - {"200", "202"}:
            problem = op["responses"][status]["content"]["application/json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
    # the body schemas are the models' own, their nested models resolvable
    assert schemas["WebhookPayload"]["properties"]["alerts"]["items"] == {
        "$ref": "#/components/schemas/WebhookAlert"
    }
    assert set(schemas["ApprovalAnswer"]["required"]) == {"by"}
    assert schemas["PauseRequest"]["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert set(doc["paths"]["/incidents/{incident_id}"]["get"]["responses"]) >= {"200", "404"}
    assert set(doc["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_an_open_webhook_declares_no_401(tmp_path: Path) -> None:
    app, runtime, backends = make_service(tmp_path)
    try:
        op = app.openapi()["paths"]["/alerts"]["post"]
        assert "401" not in op["responses"] and "security" not in op
    finally:
        runtime.supervisor.close()
        backends.close()


def _refusals(runtime: Any) -> list[dict[str, Any]]:
    return [
        r.data["access"]
        for r in runtime.supervisor.audit.find(AuditKind.INCIDENT_UPDATED)
        if "access" in r.data
    ]


def test_a_flood_of_bad_tokens_is_one_record_a_window_and_counted_at_stop(served: Any) -> None:
    app, runtime = served
    with TestClient(app) as client:
        before = len(runtime.supervisor.audit)
        for i in range(30):
            headers = auth("wrong") if i % 2 else {}
            assert client.post("/alerts", json={}, headers=headers).status_code == 401
            res = client.post("/pause", json={"by": "alice"}, headers=headers)
            assert res.status_code == 401
        # 60 refusals: one record per route now, not 60 writes
        assert len(runtime.supervisor.audit) == before + 2
        first = _refusals(runtime)
        assert sorted((r["route"], r["refusals"]) for r in first) == [
            ("alerts", 1),
            ("approval API", 1),
        ]
        assert all(r["sources"] == ["testclient"] for r in first)
    # the refusals counted since are recorded when the service stops
    later = _refusals(runtime)[2:]
    assert sorted((r["route"], r["refusals"]) for r in later) == [
        ("alerts", 29),
        ("approval API", 29),
    ]
    assert runtime.supervisor.incidents.all() == []
    assert not runtime.supervisor.pause.state().global_


def test_the_tally_records_once_a_window_with_the_count_and_capped_sources() -> None:
    now = [0.0]
    tally = RefusalTally(window=60.0, clock=lambda: now[0])
    first = tally.refused("alerts", "10.0.0.1")
    assert first is not None and first["access"]["refusals"] == 1
    for i in range(99):
        now[0] += 0.5
        assert tally.refused("alerts", f"10.0.1.{i}") is None
    assert tally.refused("approval API", "10.0.0.9") is not None  # its own window
    now[0] = 60.0
    second = tally.refused("alerts", "10.0.0.1")
    assert second is not None
    assert second["access"]["refusals"] == 100  # the 99 counted and this one
    assert len(second["access"]["sources"]) == REFUSAL_SOURCES
    assert tally.drain() == []
    now[0] = 61.0
    assert tally.refused("alerts", "10.0.0.2") is None
    [last] = tally.drain()
    assert last["access"]["refusals"] == 1 and last["access"]["sources"] == ["10.0.0.2"]
