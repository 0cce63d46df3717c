"""Where the shipped defaults live: the policies, playbooks and schemas a user gets with the
package, whether it runs from a checkout (editable install, tests) or from a wheel.

A wheel carries copies under ``supervisor/_data/`` (``setup.py`` copies them at build time);
a checkout reads the top-level folders themselves, so an edit there takes effect at once.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent

#: Top-level folders shipped as package data (see setup.py).
SHIPPED = ("policies", "playbooks", "schemas")


def _in_checkout() -> bool:
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "policies").is_dir()


def shipped_dir(name: str) -> Path:
    """The directory of shipped ``name`` (one of :data:`SHIPPED`)."""
    if name not in SHIPPED:
        raise ValueError(f"{name!r} is not shipped; use one of {SHIPPED!r}")
    return _CHECKOUT / name if _in_checkout() else _PACKAGE / "_data" / name


def default_policy_file() -> Path:
    """The shipped default policy."""
    return shipped_dir("policies") / "default.yaml"


def default_playbooks_dir() -> Path:
    """The shipped playbooks."""
    return shipped_dir("playbooks")
