"""The demo: the supervisor on its embedded simulated world."""

from ._run import run_demo
from ._scenario import DEMO_APPROVER, demo_config
from ._wiring import demo_backends, load_world, save_world, sim_backends

__all__ = [
    "DEMO_APPROVER",
    "demo_backends",
    "demo_config",
    "load_world",
    "run_demo",
    "save_world",
    "sim_backends",
]
