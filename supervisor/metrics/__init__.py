"""Prometheus metrics of the supervisor, drift figures included, for the service's ``/metrics``.

Typical use::

    metrics = SupervisorMetrics(models=[m.name for m in config.models])
    metrics.observe_drift(report)          # after each drift check
    body, ctype = metrics.render(), metrics.content_type
"""

from ._metrics import DECISION_LATENCY_BUCKETS, SupervisorMetrics, data_defect_count

__all__ = ["DECISION_LATENCY_BUCKETS", "SupervisorMetrics", "data_defect_count"]
