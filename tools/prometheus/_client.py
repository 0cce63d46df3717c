"""The HTTP side of the adapter: PrometheusConnect over one ``requests`` session, with the
retry policy, timeouts, and every failure turned into a :class:`supervisor.BackendError`.

Retry policy (tenacity): connection errors, timeouts and 5xx answers are retried, up to
``retries`` extra attempts with exponential backoff capped at ``backoff_max_s``; 4xx answers
(bad PromQL among them) and malformed bodies are not, since asking again cannot help.
PrometheusConnect's own urllib3 retries are switched off so this is the only policy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from supervisor import BackendError, Clock, SystemClock

from ._config import PrometheusConfig

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

_SHOWN_CHARS = 300


class _BadAnswer(Exception):
    """Prometheus answered, but not with a successful JSON envelope."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _check_answer(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """``requests`` response hook: raise :class:`_BadAnswer` unless the envelope says success."""
    body = response.content
    try:
        envelope = json.loads(body)
    except ValueError:
        kind = response.headers.get("content-type", "no content-type")
        raise _BadAnswer(
            response.status_code, f"non-JSON body ({kind}) starting {_shorten(body)!r}"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("status") != "success":
        if isinstance(envelope, dict) and "error" in envelope:
            detail = f"{envelope.get('errorType', 'error')}: {envelope['error']}"
        else:
            detail = f"unexpected body {_shorten(body)!r}"
        raise _BadAnswer(response.status_code, detail)
    if response.status_code != 200:
        raise _BadAnswer(response.status_code, f"unexpected body {_shorten(body)!r}")
    # Callers (PrometheusConnect among them) call response.json() next: hand them the envelope
    # parsed here instead of decoding a large body twice.
    response.json = lambda **_: envelope  # type: ignore[method-assign]


def _shorten(text: str | bytes, limit: int = _SHOWN_CHARS) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def _retryable(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, _BadAnswer):
        return exc.status >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class PrometheusClient:
    """One Prometheus server: instant queries and API reads, counted, bounded and retried.

    Safe to share between threads: :meth:`PrometheusMetrics.observe` sends its queries
    concurrently.
    """

    def __init__(self, config: PrometheusConfig, *, clock: Clock | None = None) -> None:
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.config = config
        self._clock = clock or SystemClock()
        self._session = requests.Session()
        self._session.hooks["response"].append(_check_answer)
        self._prom = PrometheusConnect(
            url=config.url,
            session=self._session,
            retry=Retry(total=0, read=False, redirect=False, status=False),
            timeout=config.timeout_s,
        )
        self._lock = threading.Lock()
        #: PromQL queries asked (a retried query counts once).
        self.queries_issued = 0
        #: HTTP requests sent, retries included.
        self.requests_sent = 0

    @property
    def clock(self) -> Clock:
        """The time source: ``now`` for default query times, ``sleep`` between attempts."""
        return self._clock

    @property
    def url(self) -> str:
        """Base URL of the Prometheus HTTP API."""
        return self.config.url

    def query(self, promql: str, *, at: datetime) -> list[Any]:
        """Evaluate ``promql`` as an instant query at ``at``; the ``result`` list of the answer."""
        with self._lock:
            self.queries_issued += 1
        params = {"time": f"{at.timestamp():.3f}", "timeout": f"{self.config.timeout_s:g}s"}

        def attempt() -> list[Any]:
            self._count_request()
            result: Any = self._prom.custom_query(promql, params=params)
            return result  # type: ignore[no-any-return]

        return self._call(attempt, f"query {_shorten(promql)!r}", bad_request_hint=True)

    def get(self, path: str) -> Any:
        """GET ``/api/v1/<path>`` and return the envelope's ``data``."""
        url = f"{self.config.url}/api/v1/{path}"

        def attempt() -> Any:
            self._count_request()
            return self._session.get(url, timeout=self.config.timeout_s).json()["data"]

        return self._call(attempt, f"GET /api/v1/{path}", bad_request_hint=False)

    def _count_request(self) -> None:
        with self._lock:
            self.requests_sent += 1

    def _call(self, attempt: Callable[[], T], what: str, *, bad_request_hint: bool) -> T:
        import requests

        cfg = self.config
        retrying = Retrying(
            stop=stop_after_attempt(cfg.retries + 1),
            wait=wait_exponential(multiplier=cfg.backoff_s, max=cfg.backoff_max_s),
            retry=retry_if_exception(_retryable),
            sleep=self._clock.sleep,
            reraise=True,
        )
        where = f"Prometheus at {cfg.url!r}"
        try:
            return retrying(attempt)
        except _BadAnswer as err:
            tries = _attempts(retrying)
            if err.status >= 500:
                raise BackendError(
                    f"{where} failed {what} after {tries}: {err}; check Prometheus health and "
                    "logs (overload, query timeouts, a proxy in front of it)"
                ) from None
            if err.detail.startswith(("non-JSON", "unexpected body")):
                raise BackendError(
                    f"{where} answered {what} with {err}; check that url points at the "
                    "Prometheus HTTP API, not a proxy, a login page or another service"
                ) from None
            hint = (
                "the PromQL template of this signal and the label scheme in the prometheus config"
                if bad_request_hint
                else "the Prometheus version and its API permissions"
            )
            raise BackendError(
                f"{where} rejected {what}: {err} (not retried); check {hint}"
            ) from None
        except requests.Timeout as err:
            raise BackendError(
                f"{where} did not answer {what} within timeout_s={cfg.timeout_s:g} "
                f"({_attempts(retrying)}): {type(err).__name__}; check Prometheus load and "
                "health, or raise timeout_s in the prometheus config"
            ) from None
        except requests.ConnectionError as err:
            raise BackendError(
                f"cannot reach {where} for {what} ({_attempts(retrying)}): {_reason(err)}; "
                "check that Prometheus is running and that url in the prometheus config is right"
            ) from None
        except (requests.RequestException, KeyError, TypeError, RetryError) as err:
            raise BackendError(
                f"{where} failed {what}: {type(err).__name__}: {err}; check that url points at "
                "the Prometheus HTTP API"
            ) from None

    def close(self) -> None:
        """Release the HTTP connections."""
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _attempts(retrying: Retrying) -> str:
    n = int(retrying.statistics.get("attempt_number", 1))
    return f"{n} attempt{'s' if n != 1 else ''}"


def _reason(err: Exception) -> str:
    # requests nests urllib3's errors; the innermost says what actually happened.
    inner: BaseException = err
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    return _shorten(str(reason if reason is not None else inner), 200)
