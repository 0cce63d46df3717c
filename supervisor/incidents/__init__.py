"""Incident management: signals deduplicated into incidents."""

from ._checks import DRIFT_SINCE, Checker
from ._manager import ENDED, IncidentManager, SharedIncidents

__all__ = ["DRIFT_SINCE", "ENDED", "Checker", "IncidentManager", "SharedIncidents"]
