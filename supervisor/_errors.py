"""The one project exception and its subclasses.

Errors a reasoner can correct travel back to it as a tool result (status ``error``); everything
else is raised as a :class:`SupervisorError` whose message names the offending value and says
what to do about it.
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Base class of every error mlops-supervisor raises on purpose."""


class ConfigError(SupervisorError):
    """A config, policy, playbook or scenario file is malformed."""


class BackendError(SupervisorError):
    """A backend (metrics, drift, registry, deploy, train) failed to answer."""


class ActionError(SupervisorError):
    """An action could not be carried out; the world is unchanged or reconciled."""


class PolicyViolation(SupervisorError):
    """Something tried to act without an allowing guard decision on record."""


class AuditIntegrityError(SupervisorError):
    """The audit log failed verification."""


class NotLeader(SupervisorError):
    """Another replica leads: only the leader runs incident graphs (and so acts)."""
