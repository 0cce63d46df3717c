"""The executor: guarded, idempotent, crash-reconciling action execution."""

from ._executor import Executor

__all__ = ["Executor"]
