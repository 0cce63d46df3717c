"""Building the MLflow client lazily and turning its failures into supervisor errors.

MLflow's client retries connection errors, timeouts and 5xx answers itself (urllib3
``Retry``, every method); it reads its limits only from environment variables, so
:func:`connect` sets ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``..._BACKOFF_FACTOR`` and
``..._TIMEOUT`` from :class:`MlflowConnection` before each call (two adapters with different
limits in one process each get theirs). That is the one place
the retry policy of this adapter lives. 4xx answers are never retried.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from supervisor import ActionError, BackendError

from ._config import MlflowConnection

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_CLIENT_ERRORS = frozenset(
    {"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST", "INVALID_STATE"}
)
_SHOWN_CHARS = 300


class NotFound(Exception):
    """The store answered that the thing asked about does not exist."""


class Unavailable(Exception):
    """No clear answer: unreachable, timed out, 5xx after retries. A write may have applied."""


class Rejected(Exception):
    """The store refused the request (4xx): asking again cannot help."""


def connect(connection: MlflowConnection) -> MlflowClient:
    """An ``MlflowClient`` for ``connection`` with this adapter's retry limits applied."""
    apply_limits(connection)
    from mlflow import MlflowClient

    try:
        return MlflowClient(tracking_uri=connection.tracking_uri, registry_uri=connection.registry)
    except Exception as err:  # a bad URI scheme or an unopenable sqlite file
        raise BackendError(
            f"mlflow: cannot open the store {connection.tracking_uri!r}: {_short(err)}; "
            "fix mlflow.tracking_uri in the config"
        ) from err


def apply_limits(connection: MlflowConnection) -> None:
    """Set MLflow's process-wide HTTP limits to ``connection``'s (MLflow reads them per call)."""
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(connection.max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(connection.backoff_factor)
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(max(1, connection.timeout_s)))


def classify(connection: MlflowConnection, fn: Callable[[], T]) -> T:
    """Run one client call under ``connection``'s limits; raise NotFound, Rejected or
    Unavailable instead of MLflow's error."""
    from mlflow.exceptions import MlflowException

    apply_limits(connection)

    try:
        return fn()
    except MlflowException as err:
        code = str(getattr(err, "error_code", ""))
        if code == _NOT_FOUND:
            raise NotFound(_short(err)) from err
        if code in _CLIENT_ERRORS:
            raise Rejected(_short(err)) from err
        raise Unavailable(_short(err)) from err
    except OSError as err:  # requests' ConnectionError is an OSError; so is a sqlite I/O error
        raise Unavailable(_short(err)) from err


def backend_error(connection: MlflowConnection, what: str, err: Exception) -> BackendError:
    """A BackendError for a failed read, naming the store and what to check."""
    return BackendError(
        f"mlflow: {what} failed at {_where(connection)}: {err}; {_hint(connection, err)}"
    )


def action_error(
    connection: MlflowConnection, what: str, err: Exception, state: str
) -> ActionError:
    """An ActionError for a failed write; ``state`` says what the registry looks like now."""
    return ActionError(
        f"mlflow: {what} failed at {_where(connection)}: {err}; {state}; {_hint(connection, err)}"
    )


def _where(connection: MlflowConnection) -> str:
    return repr(connection.registry)


def _hint(connection: MlflowConnection, err: Exception) -> str:
    if isinstance(err, Rejected):
        return "the store refused the request: this is a bug or a version mismatch, not a fault"
    if connection.is_server:
        return (
            "check that the MLflow server is running and reachable from the supervisor "
            "(mlflow.tracking_uri in the config) and look at its log for 5xx errors"
        )
    return "check that the store file exists and is writable (mlflow.tracking_uri in the config)"


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
