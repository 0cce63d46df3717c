"""The closed vocabularies shared by playbooks, policies, evals and reports."""

from __future__ import annotations

from enum import StrEnum


class RootCause(StrEnum):
    """Why a model misbehaves. Exactly one is named per diagnosis."""

    COVARIATE_DRIFT = "covariate_drift"
    CONCEPT_DRIFT = "concept_drift"
    UPSTREAM_DATA_DEFECT = "upstream_data_defect"
    TRAINING_SERVING_SKEW = "training_serving_skew"
    BAD_MODEL_VERSION = "bad_model_version"
    INFRASTRUCTURE = "infrastructure"
    HEALTHY_CANARY = "healthy_canary"
    BENIGN_CHANGE = "benign_change"
    INSUFFICIENT_EVIDENCE = "insufficient_evidence"


class ActionType(StrEnum):
    """What the supervisor may do about it. Nothing outside this set is ever executed."""

    RETRAIN = "retrain"
    ROLLBACK = "rollback"
    PROMOTE_CANARY = "promote_canary"
    ABORT_CANARY = "abort_canary"
    SET_CANARY_WEIGHT = "set_canary_weight"
    ESCALATE = "escalate"
    NO_ACTION = "no_action"


#: Actions that change a backend. ``escalate`` pages a human and ``no_action`` does nothing.
MUTATING_ACTIONS: frozenset[ActionType] = frozenset(
    {
        ActionType.RETRAIN,
        ActionType.ROLLBACK,
        ActionType.PROMOTE_CANARY,
        ActionType.ABORT_CANARY,
        ActionType.SET_CANARY_WEIGHT,
    }
)


class Symptom(StrEnum):
    """What a signal says is wrong; incidents are deduplicated per (model, symptom)."""

    HIGH_ERROR_RATE = "high_error_rate"
    HIGH_LATENCY = "high_latency"
    DATA_DRIFT = "data_drift"
    QUALITY_DROP = "quality_drop"
    DATA_QUALITY = "data_quality"
    SATURATION = "saturation"
    CANARY_ANALYSIS = "canary_analysis"
    NO_DATA = "no_data"


class MetricName(StrEnum):
    """Serving signals the metrics port answers, per model and version."""

    ERROR_RATE = "error_rate"
    LATENCY_P50 = "latency_p50"
    LATENCY_P99 = "latency_p99"
    THROUGHPUT = "throughput"
    SATURATION = "saturation"
    PREDICTION_SCORE_MEAN = "prediction_score_mean"
    ACCURACY = "accuracy"
