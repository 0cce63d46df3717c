"""The daily token budget shared by every incident, and the cost of tokens from the price table."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor._shared import SharedDocument

from ._config import ModelPrice


def token_cost(price: ModelPrice | None, input_tokens: int, output_tokens: int) -> float | None:
    """US dollars for the tokens, or None when the model has no price."""
    if price is None:
        return None
    return round(
        (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6,
        6,
    )


class DailyTokenBudget:
    """Tokens spent per UTC day (by the injected clock), optionally persisted across restarts:
    in ``path``, or in ``shared`` (Postgres) so that replicas, and the next leader after a
    failover, spend one budget."""

    def __init__(
        self,
        limit: int | None,
        now: Callable[[], datetime],
        path: Path | None = None,
        *,
        shared: SharedDocument | None = None,
    ) -> None:
        self.limit = limit
        self._now = now
        self._path = path
        self._shared = shared
        self._lock = threading.Lock()
        self._day, self._used = self._load()

    def _load(self) -> tuple[str, int]:
        raw: Any = None
        if self._shared is not None:
            raw = self._shared.read()
        elif self._path is not None and self._path.exists():
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        if raw:
            return str(raw["day"]), int(raw["used"])
        return self._today(), 0

    def _today(self) -> str:
        return self._now().date().isoformat()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._used = today, 0

    @property
    def used(self) -> int:
        """Tokens spent today (by every replica, when shared)."""
        with self._lock:
            if self._shared is not None:
                self._day, self._used = self._load()
            self._roll()
            return self._used

    def remaining(self) -> int | None:
        """Tokens left today; None when there is no cap."""
        if self.limit is None:
            return None
        return max(0, self.limit - self.used)

    def exhausted(self) -> bool:
        """Whether today's budget is spent."""
        left = self.remaining()
        return left is not None and left <= 0

    def charge(self, tokens: int) -> None:
        """Add ``tokens`` to today's spend."""
        if self._shared is not None:
            with self._lock, self._shared.update() as doc:
                day, used = self._today(), 0
                if doc.value and doc.value.get("day") == day:
                    used = int(doc.value["used"])
                self._day, self._used = day, used + tokens
                doc.value = {"day": self._day, "used": self._used}
            return
        with self._lock:
            self._roll()
            self._used += tokens
            if self._path is not None:
                tmp = self._path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"day": self._day, "used": self._used}), "utf-8")
                tmp.replace(self._path)
