"""The watch config: watched models, signals, thresholds, limits and timing."""

from ._load import config_from_dict, load_config
from ._model import (
    BackendsConfig,
    DataSpec,
    DeploymentSpec,
    DriftCheck,
    IntakeConfig,
    Limits,
    QualityWatch,
    ServiceConfig,
    SignalThreshold,
    SupervisorConfig,
    Timing,
    WatchedModel,
)

__all__ = [
    "BackendsConfig",
    "DataSpec",
    "DeploymentSpec",
    "DriftCheck",
    "IntakeConfig",
    "Limits",
    "QualityWatch",
    "ServiceConfig",
    "SignalThreshold",
    "SupervisorConfig",
    "Timing",
    "WatchedModel",
    "config_from_dict",
    "load_config",
]
