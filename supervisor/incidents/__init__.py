"""Incident management: signals deduplicated into incidents."""

from ._checks import Checker
from ._manager import ENDED, IncidentManager, SharedIncidents

__all__ = ["ENDED", "Checker", "IncidentManager", "SharedIncidents"]
