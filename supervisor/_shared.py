"""Small JSON documents the supervisor keeps (pause switch, LLM budget, Slack message map):
in a file of the state directory, in memory, or in Postgres when replicas share their state
(``supervisor.ha.PostgresDocument``). All three are read fresh on every call and changed by a
read-modify-write that is exclusive (across replicas, for Postgres)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol


class DocumentUpdate:
    """The document inside an ``update()`` block: ``value`` is what it holds now; setting it
    writes the new value when the block ends."""

    def __init__(self, value: Any | None) -> None:
        self._value = value
        self.written = False

    @property
    def value(self) -> Any | None:
        return self._value

    @value.setter
    def value(self, new: Any) -> None:
        self._value = new
        self.written = True


class SharedDocument(Protocol):
    """One named JSON document, read fresh on every call."""

    def read(self) -> Any | None:
        """The document now; None if it was never written."""
        ...

    def update(self) -> AbstractContextManager[DocumentUpdate]:
        """A read-modify-write, exclusive while the block runs."""
        ...


class FileDocument:
    """A document in a JSON file, replaced atomically; exclusive within this process (a CLI
    in another process that writes at the same instant: the last write wins whole)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> Any | None:
        if not self.path.exists():
            return None
        return json.loads(self.path.read_text(encoding="utf-8"))

    @contextmanager
    def update(self) -> Iterator[DocumentUpdate]:
        with self._lock:
            doc = DocumentUpdate(self.read())
            yield doc
            if doc.written:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(doc.value, indent=1, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)


class MemoryDocument:
    """A document that lives as long as the object (nothing to persist)."""

    def __init__(self) -> None:
        self._value: Any | None = None
        self._lock = threading.Lock()

    def read(self) -> Any | None:
        return self._value

    @contextmanager
    def update(self) -> Iterator[DocumentUpdate]:
        with self._lock:
            doc = DocumentUpdate(self._value)
            yield doc
            if doc.written:
                self._value = doc.value
