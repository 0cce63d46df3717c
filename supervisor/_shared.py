"""A JSON document replicas share (``supervisor.ha.PostgresDocument``), as the parts that keep
small state (pause switch, LLM budget, Slack message map) see it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol


class SharedDocument(Protocol):
    """One named JSON document, read fresh on every call."""

    def read(self) -> Any | None:
        """The document now; None if it was never written."""
        ...

    def update(self) -> AbstractContextManager[Any]:
        """A read-modify-write, exclusive across replicas: yields an object whose ``value``
        is the document; setting ``value`` writes it when the block ends."""
        ...
