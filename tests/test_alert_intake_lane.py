"""POST /alerts on the intake lane: batches, answers only once durable, failures kept apart,
and the webhook shortcut answering exactly as the FastAPI route does."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from servicekit import close_service, make_service, payload

from supervisor.audit._verify import read_head
from supervisor.service import WebhookPayload
from supervisor.service._app import IntakeLane, LaneClosed


def _payloads(n: int) -> list[WebhookPayload]:
    return [WebhookPayload.model_validate(payload(group_key=f"g{i}")) for i in range(n)]


class _Fake:
    """The lane's two dependencies: intake (one call per notification) and the batch's sync
    block (records which notifications each block covered)."""

    def __init__(self, *, fail: str | None = None, sync_error: Exception | None = None) -> None:
        self.fail = fail
        self.sync_error = sync_error
        self.first_started = threading.Event()
        self.release_first = threading.Event()
        self.batches: list[list[str]] = []
        self._current: list[str] | None = None

    def intake(self, p: WebhookPayload) -> dict[str, Any]:
        if not self.batches and self._current == []:
            self.first_started.set()
            assert self.release_first.wait(10)
        assert self._current is not None, "intake outside a batch's sync block"
        self._current.append(p.groupKey)
        if p.groupKey == self.fail:
            raise ValueError(f"cannot take {p.groupKey}")
        return {"group": p.groupKey}

    @contextmanager
    def batch_sync(self) -> Iterator[None]:
        self._current = []
        try:
            yield
        finally:
            self.batches.append(self._current)
            self._current = None
        if self.sync_error is not None:
            raise self.sync_error


async def _send_all(lane: IntakeLane, fake: _Fake, items: list[WebhookPayload]) -> list[Any]:
    """The first notification alone, then the rest while the lane is busy with it."""
    first = asyncio.ensure_future(lane.intake(items[0]))
    assert await asyncio.to_thread(fake.first_started.wait, 10)
    rest = [asyncio.ensure_future(lane.intake(p)) for p in items[1:]]
    await asyncio.sleep(0)  # every request is queued before the lane is let go
    fake.release_first.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


def test_notifications_that_wait_are_taken_in_one_batch_in_arrival_order() -> None:
    fake = _Fake()
    lane = IntakeLane(fake.intake, fake.batch_sync)
    items = _payloads(10)
    answers = asyncio.run(_send_all(lane, fake, items))
    assert answers == [{"group": f"g{i}"} for i in range(10)]
    assert fake.batches == [["g0"], [f"g{i}" for i in range(1, 10)]]
    lane.close(timeout=5)


def test_batches_are_bounded() -> None:
    fake = _Fake()
    lane = IntakeLane(fake.intake, fake.batch_sync, max_batch=4)
    asyncio.run(_send_all(lane, fake, _payloads(10)))
    assert [len(b) for b in fake.batches] == [1, 4, 4, 1]
    lane.close(timeout=5)


def test_a_failing_notification_fails_alone() -> None:
    fake = _Fake(fail="g3")
    lane = IntakeLane(fake.intake, fake.batch_sync)
    answers = asyncio.run(_send_all(lane, fake, _payloads(6)))
    assert isinstance(answers[3], ValueError) and "g3" in str(answers[3])
    assert [a for i, a in enumerate(answers) if i != 3] == [
        {"group": f"g{i}"} for i in (0, 1, 2, 4, 5)
    ]
    lane.close(timeout=5)


def test_when_the_wait_for_the_disk_fails_the_whole_batch_fails() -> None:
    fake = _Fake(sync_error=OSError("fsync failed"))
    lane = IntakeLane(fake.intake, fake.batch_sync)
    answers = asyncio.run(_send_all(lane, fake, _payloads(5)))
    assert all(isinstance(a, OSError) for a in answers)
    assert fake.batches == [["g0"], ["g1", "g2", "g3", "g4"]]
    lane.close(timeout=5)


def test_an_idle_lane_stops_its_thread_and_a_closed_one_refuses() -> None:
    fake = _Fake()
    fake.release_first.set()
    lane = IntakeLane(fake.intake, fake.batch_sync, idle_seconds=0.05)
    [one] = _payloads(1)

    def lane_threads() -> int:
        return sum(t.name == "intake" and t.is_alive() for t in threading.enumerate())

    assert asyncio.run(lane.intake(one)) == {"group": "g0"}
    threads_before = lane_threads()
    for _ in range(200):
        if lane_threads() < threads_before:
            break
        threading.Event().wait(0.02)
    assert lane_threads() < threads_before, "the idle lane kept its thread"
    assert asyncio.run(lane.intake(one)) == {"group": "g0"}  # a new thread takes it
    lane.close(timeout=5)
    with pytest.raises(LaneClosed):
        asyncio.run(lane.intake(one))


# ------------------------------------------------------------------ the real service


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    app, runtime, backends = make_service(tmp_path)
    yield app, runtime
    close_service(runtime, backends)


def test_concurrent_notifications_are_answered_only_once_durable(
    served: tuple[Any, Any],
) -> None:
    app, runtime = served
    # An unwatched model: recorded and ignored, so intake is the only writer of the log.
    body = payload(model="not-watched")

    async def storm() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(*(client.post("/alerts", json=body) for _ in range(30)))

    answers = asyncio.run(storm())
    assert [a.status_code for a in answers] == [200] * 30
    assert all(a.json()["signals"] == 1 and a.json()["opened"] == [] for a in answers)
    audit = runtime.supervisor.audit
    assert len(audit) == 30
    head = read_head(audit.path)
    assert head is not None and head[0] == 30  # the head file covers every answered record


def _answers(client: TestClient) -> list[tuple[int, Any]]:
    bodies: list[Any] = [
        json.dumps(payload(model="not-watched")).encode(),
        b"{not json",
        json.dumps({**payload(), "version": "3"}).encode(),
        json.dumps(payload(annotations={"description": "x" * 2_000_000})).encode(),
    ]
    out = []
    for body in bodies:
        res = client.post("/alerts", content=body, headers={"content-type": "application/json"})
        out.append((res.status_code, res.json()))
    return out


def test_the_webhook_shortcut_answers_as_the_fastapi_route(served: tuple[Any, Any]) -> None:
    app, _ = served
    client = TestClient(app)
    shortcut = _answers(client)
    app.webhook = None  # every request through the middleware stack and the router
    routed = _answers(client)
    assert shortcut == routed
    assert [status for status, _ in shortcut] == [200, 422, 422, 413]


def test_a_failing_intake_is_a_500_and_logged(
    served: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    app, runtime = served
    runtime.supervisor.audit.close()  # every append now raises
    res = TestClient(app).post("/alerts", json=payload())
    assert res.status_code == 500
    assert res.json() == {"detail": "internal error; see the service log"}
    assert "POST /alerts failed" in caplog.text
