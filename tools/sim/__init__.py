"""The simulated production world: every backend port, in-process, deterministic from a seed.

>>> world = build_world(demo_world_spec(seed=7))
>>> world.advance(timedelta(minutes=45))
>>> world.read("churn", MetricName.ACCURACY, version=None, window=timedelta(minutes=10))
"""

from ._spec import (
    DATA_DEFECTS,
    FAULT_PARAMS,
    AlertSpec,
    DeploySpec,
    FaultKind,
    FaultSpec,
    ModelSpec,
    PastChange,
    WorldSpec,
    demo_world_spec,
)
from ._world import PREDICTION_COLUMN, SimWorld, build_world

__all__ = [
    "DATA_DEFECTS",
    "FAULT_PARAMS",
    "PREDICTION_COLUMN",
    "AlertSpec",
    "DeploySpec",
    "FaultKind",
    "FaultSpec",
    "ModelSpec",
    "PastChange",
    "SimWorld",
    "WorldSpec",
    "build_world",
    "demo_world_spec",
]
