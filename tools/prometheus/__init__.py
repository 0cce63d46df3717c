"""Prometheus adapter: the metrics port (PromQL templates per signal, batched across models)
and the alerts port (``/api/v1/alerts``).

Typical use::

    client = PrometheusClient(PrometheusConfig(url="http://prometheus:9090"), clock=clock)
    metrics, alerts = PrometheusMetrics(client), PrometheusAlerts(client)
    readings = metrics.observe(models, list(MetricName), timedelta(minutes=5))
"""

from ._alerts import PrometheusAlerts, label_fingerprint
from ._client import PrometheusClient
from ._config import PLACEHOLDERS, LabelScheme, PrometheusConfig, SignalQuery
from ._metrics import ObservationKey, PrometheusMetrics, Snapshot
from ._schemes import BUILTIN_SCHEMES

__all__ = [
    "BUILTIN_SCHEMES",
    "PLACEHOLDERS",
    "LabelScheme",
    "ObservationKey",
    "PrometheusAlerts",
    "PrometheusClient",
    "PrometheusConfig",
    "PrometheusMetrics",
    "SignalQuery",
    "Snapshot",
    "label_fingerprint",
]
