"""The daily token budget shared by every incident, and the cost of tokens from the price table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor._shared import FileDocument, MemoryDocument, SharedDocument

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
    """Tokens spent per UTC day (by the injected clock): in memory, in the file ``path`` (kept
    across restarts), or in ``shared`` (Postgres) so that replicas, and the next leader after a
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
        self._doc: SharedDocument = shared or (
            FileDocument(path) if path is not None else MemoryDocument()
        )

    def _spent_today(self, raw: Any | None) -> int:
        """The spend a stored ``{"day", "used"}`` counts for today (0 from an earlier day)."""
        if raw and raw.get("day") == self._now().date().isoformat():
            return int(raw["used"])
        return 0

    @property
    def used(self) -> int:
        """Tokens spent today (by every replica, when shared)."""
        return self._spent_today(self._doc.read())

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
        with self._doc.update() as doc:
            doc.value = {
                "day": self._now().date().isoformat(),
                "used": self._spent_today(doc.value) + tokens,
            }
