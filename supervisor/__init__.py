"""mlops-supervisor: diagnose ML incidents and act on them only as policy allows."""

from ._clock import Clock, SimClock, SystemClock
from ._errors import (
    ActionError,
    AuditIntegrityError,
    BackendError,
    ConfigError,
    PolicyViolation,
    SupervisorError,
)

__version__ = "0.1.0"

__all__ = [
    "ActionError",
    "AuditIntegrityError",
    "BackendError",
    "Clock",
    "ConfigError",
    "PolicyViolation",
    "SimClock",
    "SupervisorError",
    "SystemClock",
    "__version__",
]
