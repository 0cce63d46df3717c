"""Posting and updating one Slack message per incident."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from supervisor._shared import FileDocument, SharedDocument

from ._blocks import incident_blocks, incident_title
from ._config import SlackConfig
from ._pause import PauseSwitch

if TYPE_CHECKING:
    from supervisor.runtime import Supervisor

log = logging.getLogger("mlops_supervisor.chatops")

MESSAGES_FILE = "slack_messages.json"


class SlackNotifier:
    """Keeps each incident's Slack message in step with the incident.

    The message's channel and ``ts`` per incident live in ``slack_messages.json`` in the state
    directory, so a restarted service updates the messages it posted before; replicas sharing
    Postgres keep them there instead (one message per incident, whichever replica posts). A
    failing Slack never fails the supervisor: the error is logged and the next change tries
    again.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        config: SlackConfig,
        client: WebClient,
        *,
        pause: PauseSwitch | None = None,
        path: Path | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.config = config
        self.client = client
        self.pause = pause
        self.path = path or supervisor.state_dir / MESSAGES_FILE
        self._messages: SharedDocument = supervisor.shared_document(
            "slack_messages"
        ) or FileDocument(self.path)
        self._lock = threading.Lock()

    def message_of(self, incident_id: str) -> dict[str, str] | None:
        """``{"channel", "ts", "digest"}`` of the incident's message, if one was posted."""
        found: dict[str, str] | None = (self._messages.read() or {}).get(incident_id)
        return found

    def render(self, incident_id: str, *, buttons: bool = True) -> list[dict[str, Any]]:
        """The incident's blocks as they stand now (KeyError for an unknown incident)."""
        incident = self.supervisor.incidents.get(incident_id)
        if incident is None:
            raise KeyError(incident_id)
        paused = self.pause.paused_by(incident.model) if self.pause is not None else None
        return incident_blocks(
            incident,
            self.supervisor.state(incident_id),
            buttons=buttons,
            paused_by=None if paused is None else f"by {paused.by}",
        )

    def incident_changed(self, incident_id: str) -> str | None:
        """Post the incident's message, or update it if it was posted; return its ``ts``.

        Nothing is sent when the message would not change. Returns None if Slack failed.
        """
        incident = self.supervisor.incidents.get(incident_id)
        if incident is None:
            log.warning("slack: no incident %r to post", incident_id)
            return None
        text = incident_title(incident)
        with self._lock, self._messages.update() as doc:
            # Rendered under the message's lock (a row lock across replicas), so whoever
            # writes last also read last: a slow, stale render never overwrites a newer one.
            blocks = self.render(incident_id)
            digest = hashlib.sha256(json.dumps(blocks, sort_keys=True).encode()).hexdigest()
            known: dict[str, dict[str, str]] = dict(doc.value or {})
            posted = known.get(incident_id)
            if posted is not None and posted.get("digest") == digest:
                return posted["ts"]
            try:
                if posted is None:
                    resp = self.client.chat_postMessage(
                        channel=self.config.channel, text=text, blocks=blocks
                    )
                    posted = {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
                else:
                    self.client.chat_update(
                        channel=posted["channel"], ts=posted["ts"], text=text, blocks=blocks
                    )
            except (SlackApiError, SlackClientError, OSError) as err:
                log.warning("slack: could not post incident %s: %s", incident_id, err)
                return None
            known[incident_id] = {**posted, "digest": digest}
            doc.value = known
            return posted["ts"]
