"""The ``slack:`` section of the watch config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from supervisor._errors import ConfigError


class SlackConfig(BaseModel):
    """How the supervisor talks to Slack. Secrets are never in the file: only the names of the
    environment variables that hold them."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["http", "socket"] = Field(
        default="http",
        description="http: Slack posts to /slack/events; socket: the app opens a Socket Mode "
        "websocket (no public URL needed).",
    )
    channel: str = Field(
        min_length=1, description="Channel id (e.g. C0123456) incidents are posted in."
    )
    bot_token_env: str = Field(
        default="SLACK_BOT_TOKEN", description="Environment variable with the bot token (xoxb-)."
    )
    signing_secret_env: str = Field(
        default="SLACK_SIGNING_SECRET",
        description="Environment variable with the app's signing secret (HTTP mode).",
    )
    app_token_env: str = Field(
        default="SLACK_APP_TOKEN",
        description="Environment variable with the app-level token (xapp-, Socket Mode only).",
    )
    api_base_url: str | None = Field(
        default=None,
        description="Web API base URL override, e.g. a loopback stand-in in tests "
        "(default https://slack.com/api/).",
    )
    command: str = Field(
        default="/mlops", pattern=r"^/[a-z0-9_\-]+$", description="The slash command's name."
    )
    users: dict[str, str] = Field(
        default_factory=dict,
        description="Slack user id -> identity the policy knows (e.g. U0123ABC: alice). "
        "Unmapped users act as 'slack:<user id>', which no policy names.",
    )

    def identity(self, slack_user_id: str) -> str:
        """The identity a Slack user acts as."""
        return self.users.get(slack_user_id, f"slack:{slack_user_id}")

    def secret(
        self,
        env_field: Literal["bot_token_env", "signing_secret_env", "app_token_env"],
        env: Mapping[str, str] | None = None,
    ) -> str:
        """The value of the environment variable ``env_field`` names; ConfigError if unset."""
        name: str = getattr(self, env_field)
        value = (os.environ if env is None else env).get(name, "")
        if not value.strip():
            raise ConfigError(
                f"slack.{env_field} names {name!r}, which is not set in the environment; "
                f"export {name} or point slack.{env_field} at the variable that holds it"
            )
        return value
