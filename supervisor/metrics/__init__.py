"""Prometheus metrics of the supervisor, drift figures included, for the service's ``/metrics``.

Typical use::

    metrics = SupervisorMetrics(models=[m.name for m in config.models])
    drift = ObservedDrift(drift_adapter, metrics)  # every drift report becomes gauges
    body, ctype = metrics.render(), metrics.content_type
"""

from ._metrics import DECISION_LATENCY_BUCKETS, ObservedDrift, SupervisorMetrics, data_defect_count

__all__ = [
    "DECISION_LATENCY_BUCKETS",
    "ObservedDrift",
    "SupervisorMetrics",
    "data_defect_count",
]
