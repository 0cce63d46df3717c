"""Slack chat-ops without Slack: signed requests, built with Slack's documented signing scheme
and payload shapes (``block_actions``, slash commands), go to the service's FastAPI app over a
real supervisor paused for approval on the simulated world; the Web API and response URLs are a
loopback server (tests/fake_slack.py) whose recorded calls show the blocks posted and updated.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_slack import FakeSlack, start_fake_slack
from fake_socket_mode import fake_socket_mode
from fastapi import FastAPI
from fastapi.testclient import TestClient
from simworld import Rig, fault, make_rig, open_rig
from slack_bolt.request import BoltRequest
from slackkit import (
    BOT_TOKEN,
    CHANNEL,
    INC,
    NOW,
    SECRET,
    USERS,
    block_actions,
    block_actions_payload,
    sign,
    slash,
    slash_fields,
)

from supervisor.chatops import ChatOps, SlackConfig, mount_slack
from supervisor.demo import load_world
from supervisor.domain import AuditKind, IncidentStatus
from supervisor.service import ServiceRuntime, create_app

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def paused_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A covariate-drift incident whose retrain waits for alice or bob, saved to disk."""
    rig = make_rig(tmp_path_factory.mktemp("run"), faults=[fault("covariate_drift")])
    try:
        inc = rig.first_incident()
        assert inc.id == INC and [p.action for p in rig.sup.pending_approvals()] == ["retrain"]
        rig.answer_later()
        rig.save()
    finally:
        rig.close()
    return rig.state_dir


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    fake, server = start_fake_slack()
    yield fake
    server.shutdown()
    server.server_close()


@dataclass
class Svc:
    """The service with Slack mounted, the rig under it, and the stand-in Slack."""

    http: TestClient
    chatops: ChatOps
    rig: Rig
    fake: FakeSlack

    def post(self, body: str, *, ts: int = NOW, secret: str = SECRET) -> Any:
        resp = self.http.post("/slack/events", content=body, headers=sign(body, ts, secret))
        self.chatops.drain(timeout=30)
        return resp

    def status(self) -> str:
        return self.rig.incident(INC).status.value

    def audit_len(self) -> int:
        return len(self.rig.sup.audit.records())


def open_copy(paused_run: Path, tmp_path: Path) -> Rig:
    """The paused run, copied into ``tmp_path`` (each test changes its own) and reopened."""
    state = Path(shutil.copytree(paused_run, tmp_path / "state"))
    raw = yaml.safe_load((state / "config.yaml").read_text())
    raw["state_dir"] = str(state)
    world = load_world(state)
    assert world is not None
    return open_rig(world, state, raw)


@pytest.fixture
def svc(paused_run: Path, tmp_path: Path, slack_server: FakeSlack) -> Iterator[Svc]:
    rig = open_copy(paused_run, tmp_path)
    runtime = ServiceRuntime(rig.sup, workers=1)
    app = create_app(runtime)
    config = SlackConfig(channel=CHANNEL, api_base_url=slack_server.api_url, users=USERS)
    env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET}
    chatops = ChatOps(rig.sup, config, env=env, now=lambda: NOW, on_answered=runtime.observe)
    mount_slack(app, chatops)
    slack_server.calls.clear()
    slack_server.failing.clear()
    try:
        with TestClient(app) as http:
            yield Svc(http, chatops, rig, slack_server)
    finally:
        chatops.close()
        runtime.shutdown()
        rig.close()


def texts(blocks: list[dict[str, Any]]) -> str:
    """All the text in some blocks, for asserting on content."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    out.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def world_writes(svc: Svc) -> dict[str, int]:
    return svc.rig.world_writes()


# --------------------------------------------------------------------------- incident messages


def test_an_incident_is_posted_with_diagnosis_evidence_action_verdict_and_buttons(
    svc: Svc,
) -> None:
    ts = svc.chatops.incident_changed(INC)
    [post] = svc.fake.of("chat.postMessage")
    assert post.authorization == f"Bearer {BOT_TOKEN}"
    assert post.args["channel"] == CHANNEL and ts is not None
    blocks = post.args["blocks"]
    shown = texts(blocks)
    assert blocks[0]["type"] == "header" and INC in blocks[0]["text"]["text"]
    assert "`covariate_drift` (confidence 0.85)" in shown
    assert (
        "*Key evidence*" in shown and "`get_drift_report`: the drift matters to this model" in shown
    )
    assert "*Proposed action*\n`retrain`" in shown
    assert "*Policy verdict*\n`require_approval`" in shown
    assert "`retrain-needs-approval-in-production`" in shown
    assert "Approval needed from alice, bob" in shown
    assert buttons(blocks) == [("mlops_approve", INC), ("mlops_deny", INC)]
    assert "awaiting_approval" in post.args["text"]
    # the message's ts is kept in the state dir; an unchanged incident sends nothing new
    saved = json.loads((svc.rig.state_dir / "slack_messages.json").read_text())
    assert saved[INC]["ts"] == ts and saved[INC]["channel"] == CHANNEL
    assert svc.chatops.incident_changed(INC) == ts
    assert svc.fake.methods() == ["chat.postMessage"]


def test_a_failing_slack_never_fails_the_supervisor_and_the_next_change_posts(svc: Svc) -> None:
    svc.fake.failing["chat.postMessage"] = "channel_not_found"
    assert svc.chatops.incident_changed(INC) is None
    assert svc.chatops.notifier.message_of(INC) is None
    svc.fake.failing.clear()
    ts = svc.chatops.incident_changed(INC)
    assert ts is not None and svc.fake.methods() == ["chat.postMessage", "chat.postMessage"]
    assert svc.chatops.notifier.message_of(INC) == {
        "channel": CHANNEL,
        "ts": ts,
        "digest": svc.chatops.notifier.message_of(INC)["digest"],  # type: ignore[index]
    }


def test_approve_button_resumes_the_graph_as_the_mapped_approver_and_updates_the_message(
    svc: Svc,
) -> None:
    ts = svc.chatops.incident_changed(INC)
    resp = svc.post(block_actions("mlops_approve", "U0ALICE", svc.fake))
    assert resp.status_code == 200
    assert svc.status() == "mitigated"
    assert world_writes(svc) == {"retrain": 1, "canary_started": 1}
    [approval] = svc.rig.records(AuditKind.APPROVAL, INC)
    assert approval.actor == "alice"
    assert approval.data["approval"]["decision"] == "approved"
    assert approval.data["approval"]["comment"] == "via Slack by U0ALICE"
    assert svc.fake.methods() == ["chat.postMessage", "chat.update"]
    [update] = svc.fake.of("chat.update")
    assert update.args["ts"] == ts and update.args["channel"] == CHANNEL
    shown = texts(update.args["blocks"])
    assert buttons(update.args["blocks"]) == []
    assert "Approved by *alice*" in shown and "`mitigated`" in shown
    assert "*Outcome* `succeeded`" in shown and "*Verification* passed" in shown
    assert svc.rig.verified()
    # the service's hook ran: /metrics counts the action the approval released
    metrics = svc.http.get("/metrics").text
    assert 'action="retrain",outcome="succeeded"} 1.0' in metrics


def test_a_slow_stale_render_never_overwrites_a_newer_message(
    svc: Svc, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two threads (or replicas) tell Slack about one incident: the first renders the message
    # as it stood, stalls, and would then send it after the second sent the newer one.
    notifier = svc.chatops.notifier
    notifier.incident_changed(INC)
    real_render = notifier.render
    rendered, proceed = threading.Event(), threading.Event()

    def render(incident_id: str, *, buttons: bool = True) -> list[dict[str, Any]]:
        blocks = real_render(incident_id, buttons=buttons)
        if threading.current_thread().name == "stale":
            rendered.set()
            proceed.wait(5)
        return blocks

    monkeypatch.setattr(notifier, "render", render)
    stale = threading.Thread(target=notifier.incident_changed, args=(INC,), name="stale")
    stale.start()
    assert rendered.wait(10)
    svc.rig.sup.approve(INC, "alice")  # the incident moves on while the stale render stalls
    fresh = threading.Thread(target=notifier.incident_changed, args=(INC,))
    fresh.start()
    fresh.join(0.5)  # it waits for the stalled one (it holds the message) or is done
    proceed.set()
    stale.join(10)
    fresh.join(10)
    last = svc.fake.of("chat.update")[-1]
    assert "Approved by *alice*" in texts(last.args["blocks"])
    assert last.args["blocks"] == real_render(INC)


def test_socket_mode_takes_commands_and_buttons_over_the_websocket(
    paused_run: Path, tmp_path: Path, slack_server: FakeSlack
) -> None:
    # Slack's websocket is a loopback stand-in (tests/fake_socket_mode.py); the app finds it
    # through apps.connections.open with its app-level token, as with Slack.
    app_token = "xapp-1-A0MLOPS-1767600000-0123456789abcdef"
    rig = open_copy(paused_run, tmp_path)
    config = SlackConfig(
        channel=CHANNEL, mode="socket", api_base_url=slack_server.api_url, users=USERS
    )
    slack_server.calls.clear()
    with fake_socket_mode() as socket_mode:
        slack_server.socket_url = socket_mode.url
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": app_token}
        chatops = ChatOps(rig.sup, config, env=env)
        try:
            chatops.incident_changed(INC)
            chatops.start()
            assert socket_mode.connected.wait(30)
            [opened] = slack_server.of("apps.connections.open")
            assert opened.authorization == f"Bearer {app_token}"
            # Nothing signs HTTP requests in Socket Mode: there is no events URL, and a forged
            # request handed to the app anyway is refused.
            forged = block_actions("mlops_approve", "U0ALICE", slack_server)
            app = FastAPI()
            mount_slack(app, chatops)
            with TestClient(app) as http:
                assert http.post("/slack/events", content=forged).status_code == 404
            form = {"content-type": ["application/x-www-form-urlencoded"]}
            assert chatops.app.dispatch(BoltRequest(body=forged, headers=form)).status == 401
            assert rig.incident(INC).status is IncidentStatus.AWAITING_APPROVAL

            ack = socket_mode.deliver(
                "slash_commands", slash_fields("incidents", "U0BOB", slack_server)
            )
            assert INC in json.dumps(ack["payload"])  # the answer rides on the acknowledgement
            click = block_actions_payload("mlops_approve", "U0MALLORY", slack_server)
            socket_mode.deliver("interactive", click)
            chatops.drain(timeout=30)
            [told] = slack_server.of("chat.postEphemeral")
            assert told.args["user"] == "U0MALLORY" and "may not" in told.args["text"]
            assert rig.incident(INC).status is IncidentStatus.AWAITING_APPROVAL

            click = block_actions_payload("mlops_approve", "U0ALICE", slack_server)
            socket_mode.deliver("interactive", click)
            chatops.drain(timeout=60)
            assert rig.incident(INC).status is IncidentStatus.MITIGATED
            assert rig.world_writes() == {"retrain": 1, "canary_started": 1}
            update = slack_server.of("chat.update")[-1]
            assert "Approved by *alice*" in texts(update.args["blocks"])
            assert [r.actor for r in rig.records(AuditKind.APPROVAL, INC)] == ["mallory", "alice"]
        finally:
            chatops.close()
            slack_server.socket_url = ""
            rig.close()


def test_events_share_the_url_and_answer_slacks_url_challenge(svc: Svc) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "legacy", "challenge": challenge, "type": "url_verification"})
    headers = {**sign(body, NOW), "Content-Type": "application/json"}
    resp = svc.http.post("/slack/events", content=body, headers=headers)
    assert resp.status_code == 200 and challenge in resp.text
    headers = {**sign(body, NOW, secret="wrong"), "Content-Type": "application/json"}
    assert svc.http.post("/slack/events", content=body, headers=headers).status_code == 401


def test_deny_button_escalates_and_changes_nothing(svc: Svc) -> None:
    svc.chatops.incident_changed(INC)
    assert svc.post(block_actions("mlops_deny", "U0BOB", svc.fake)).status_code == 200
    assert svc.status() == "escalated" and world_writes(svc) == {}
    [update] = svc.fake.of("chat.update")
    shown = texts(update.args["blocks"])
    assert "Denied by *bob*" in shown and "*Escalated* to *team-m*" in shown
    assert buttons(update.args["blocks"]) == []


@pytest.mark.parametrize(
    ("user", "identity", "action_id"),
    [
        ("U0MALLORY", "mallory", "mlops_approve"),  # mapped, but not in the policy
        ("U0STRANGER", "slack:U0STRANGER", "mlops_approve"),  # not mapped at all
        ("U0MALLORY", "mallory", "mlops_deny"),  # denying needs an approver too
    ],
)
def test_a_non_approver_gets_an_ephemeral_refusal_that_is_audited_and_nothing_runs(
    svc: Svc, user: str, identity: str, action_id: str
) -> None:
    svc.chatops.incident_changed(INC)
    assert svc.post(block_actions(action_id, user, svc.fake)).status_code == 200
    assert svc.fake.methods() == ["chat.postMessage", "chat.postEphemeral"]
    [eph] = svc.fake.of("chat.postEphemeral")
    assert eph.args["user"] == user and eph.args["channel"] == CHANNEL
    assert f"You ({identity}) may not" in eph.args["text"] and "alice, bob" in eph.args["text"]
    [refused] = svc.rig.records(AuditKind.APPROVAL, INC)
    assert refused.actor == identity
    assert refused.data["refused"] is True and refused.data["slack_user"] == user
    assert refused.data["decision"] == ("approved" if action_id == "mlops_approve" else "denied")
    assert svc.status() == "awaiting_approval" and world_writes(svc) == {}
    # a real approver can still answer
    svc.post(block_actions("mlops_approve", "U0ALICE", svc.fake))
    assert svc.status() == "mitigated"


def test_a_second_press_after_the_answer_is_told_the_incident_moved_on(svc: Svc) -> None:
    svc.chatops.incident_changed(INC)
    svc.post(block_actions("mlops_approve", "U0ALICE", svc.fake))
    svc.post(block_actions("mlops_approve", "U0BOB", svc.fake))
    [eph] = svc.fake.of("chat.postEphemeral")
    assert "is mitigated, not awaiting approval" in eph.args["text"]
    assert world_writes(svc) == {"retrain": 1, "canary_started": 1}


# --------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    "tamper",
    ["bad_secret", "stale", "future", "no_headers", "body_changed", "garbage_ts"],
)
def test_bad_signatures_and_stale_timestamps_get_401_and_change_nothing(
    svc: Svc, tamper: str
) -> None:
    body = block_actions("mlops_approve", "U0ALICE", svc.fake)
    headers = sign(body, NOW)
    if tamper == "bad_secret":
        headers = sign(body, NOW, secret="not-the-signing-secret")
    elif tamper == "stale":
        headers = sign(body, NOW - 301)  # Slack's window is 5 minutes
    elif tamper == "future":
        headers = sign(body, NOW + 301)
    elif tamper == "no_headers":
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif tamper == "body_changed":
        body = block_actions("mlops_approve", "U0BOB", svc.fake)
    elif tamper == "garbage_ts":
        headers["X-Slack-Request-Timestamp"] = "yesterday"
    before = svc.audit_len()
    resp = svc.http.post("/slack/events", content=body, headers=headers)
    svc.chatops.drain(timeout=30)
    assert resp.status_code == 401
    assert svc.status() == "awaiting_approval" and world_writes(svc) == {}
    assert svc.audit_len() == before
    assert svc.fake.methods() == []


@pytest.mark.parametrize(
    "body",
    [
        "payload=not+json",
        "payload=" + "%5B" * 5_000 + "%5D" * 5_000,
        'payload={"type":"block_actions","actions":[]}',
        'payload={"type":"block_actions"}',
        "payload=%5B1%2C2%5D",
    ],
    ids=["not-json", "nested", "no-actions", "actions-missing", "not-an-object"],
)
def test_a_signed_but_malformed_payload_is_400_and_changes_nothing(svc: Svc, body: str) -> None:
    """L2: a valid signature over a malformed body used to be answered 500."""
    before = svc.audit_len()
    resp = svc.post(body)
    assert resp.status_code == 400, resp.text
    assert "payload" in resp.json()["error"]
    assert svc.status() == "awaiting_approval" and world_writes(svc) == {}
    assert svc.audit_len() == before


def test_a_timestamp_inside_the_window_is_accepted(svc: Svc) -> None:
    body = slash("status", "U0BOB", svc.fake)
    resp = svc.http.post("/slack/events", content=body, headers=sign(body, NOW - 299))
    assert resp.status_code == 200


def test_a_replayed_request_gets_401_and_changes_nothing(svc: Svc) -> None:
    body = slash("pause", "U0ALICE", svc.fake)
    headers = sign(body, NOW)
    assert svc.http.post("/slack/events", content=body, headers=headers).status_code == 200
    svc.chatops.pause.resume(None, "alice")
    before = svc.audit_len()
    assert svc.http.post("/slack/events", content=body, headers=headers).status_code == 401
    assert not svc.chatops.pause.is_paused("m") and svc.audit_len() == before


# --------------------------------------------------------------------------- /mlops


def command(svc: Svc, text: str, user: str = "U0ALICE") -> dict[str, Any]:
    resp = svc.post(slash(text, user, svc.fake))
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    assert answer["response_type"] == "ephemeral"
    return answer


def pause_events(svc: Svc) -> list[dict[str, Any]]:
    return [
        {"actor": r.actor, **r.data["pause"]}
        for r in svc.rig.records(AuditKind.INCIDENT_UPDATED)
        if "pause" in r.data
    ]


def test_status_shows_the_switch_counts_and_pending_approvals(svc: Svc) -> None:
    # The retrain waits for the drifted rows' labels (a label re-check), so it is proposed, and
    # its approval runs out, 25 minutes later than it did before that wait.
    text = command(svc, "status", "U0BOB")["text"]
    assert "Acting (no global pause)" in text
    assert "Incidents: 1 awaiting_approval" in text
    assert f"`{INC}` waits for approval of `retrain` by alice, bob until 11:10 UTC" in text


def test_incidents_lists_them(svc: Svc) -> None:
    text = command(svc, "incidents", "U0STRANGER")["text"]
    assert f"`{INC}` awaiting_approval · production/m" in text


def test_explain_shows_the_incident_without_buttons(svc: Svc) -> None:
    answer = command(svc, f"explain {INC}", "U0STRANGER")
    shown = texts(answer["blocks"])
    assert "`covariate_drift` (confidence 0.85)" in shown and "*Guard*" in shown
    assert buttons(answer["blocks"]) == []
    assert "No incident `inc-9`" in command(svc, "explain inc-9")["text"]


@pytest.mark.parametrize("text", ["", "help", "reboot everything", "explain"])
def test_anything_else_gets_the_usage(svc: Svc, text: str) -> None:
    assert "`explain ID`" in command(svc, text)["text"]


def test_approve_by_command_resumes_the_graph_and_answers_on_the_response_url(
    svc: Svc,
) -> None:
    answer = command(svc, f'approve {INC} "fresh data looks fine"')
    assert answer["text"] == f"Working on `approve {INC}`…"
    assert svc.status() == "mitigated"
    assert world_writes(svc) == {"retrain": 1, "canary_started": 1}
    [approval] = svc.rig.records(AuditKind.APPROVAL, INC)
    assert approval.data["approval"]["comment"] == "via Slack by U0ALICE: fresh data looks fine"
    [respond] = svc.fake.of("respond")
    assert respond.path == "/respond/cmd" and respond.args["response_type"] == "ephemeral"
    assert respond.args["text"] == f"`{INC}`: approved by alice; incident is now mitigated."
    [post] = svc.fake.of("chat.postMessage")  # the incident's message shows the outcome
    assert "Approved by *alice*" in texts(post.args["blocks"])


def test_deny_by_command_from_a_non_approver_is_refused_and_audited(svc: Svc) -> None:
    command(svc, f"deny {INC}", "U0MALLORY")
    [respond] = svc.fake.of("respond")
    assert respond.args["text"].startswith(":no_entry: You (mallory) may not deny")
    [refused] = svc.rig.records(AuditKind.APPROVAL, INC)
    assert refused.data["refused"] is True and refused.data["via"] == "slack"
    assert svc.status() == "awaiting_approval"
    command(svc, f"deny {INC} not now", "U0BOB")
    assert svc.status() == "escalated" and world_writes(svc) == {}


def test_pause_and_resume_globally_and_per_model_are_audited(svc: Svc) -> None:
    svc.chatops.incident_changed(INC)
    assert "Paused all models" in command(svc, "pause")["text"]
    assert svc.chatops.pause.is_paused("m")
    assert "All actions paused* by alice" in command(svc, "status")["text"]
    # the open incident's message says actions are paused
    [update] = svc.fake.of("chat.update")
    assert "Actions are paused (by alice)" in texts(update.args["blocks"])
    assert "already paused" in command(svc, "pause")["text"]
    assert "Paused `m`" in command(svc, "pause m", "U0BOB")["text"]
    assert "Resumed all models" in command(svc, "resume")["text"]
    assert svc.chatops.pause.is_paused("m")  # the model's own pause still holds
    assert "Resumed `m`" in command(svc, "resume m")["text"]
    assert not svc.chatops.pause.is_paused("m")
    assert [(e["event"], e["scope"], e["model"], e["actor"]) for e in pause_events(svc)] == [
        ("paused", "global", None, "alice"),
        ("paused", "model", "m", "bob"),
        ("resumed", "global", None, "alice"),
        ("resumed", "model", "m", "alice"),
    ]
    assert "no watched model 'nope'" in command(svc, "pause nope")["text"]


def test_pause_by_someone_outside_the_approver_groups_is_refused_and_audited(svc: Svc) -> None:
    text = command(svc, "pause", "U0STRANGER")["text"]
    assert "You (slack:U0STRANGER) may not pause" in text
    assert not svc.chatops.pause.is_paused("m")
    [event] = pause_events(svc)
    assert event["event"] == "refused" and event["requested"] == "pause"
    assert event["actor"] == "slack:U0STRANGER"
