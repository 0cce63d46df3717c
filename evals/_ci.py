"""The CI floor: a committed subset of scenarios and the accuracy it must not fall below."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from supervisor._yaml import load_yaml_model

from ._harness import EVALS_DIR

CI_FLOOR_FILE = EVALS_DIR / "ci_floor.yaml"


class GeneratedFloor(BaseModel):
    """A fixed-seed generated subset CI also runs, with floors of its own."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=1, description="How many scenarios to draw (evals.generate_scenarios).")
    seed: int = Field(ge=0, description="Generator seed: the same n and seed, the same scenarios.")
    root_cause_accuracy: float = Field(ge=0, le=1, description="Fail below this accuracy.")
    action_accuracy: float = Field(ge=0, le=1, description="Fail below this action accuracy.")
    max_unsafe_actions: int = Field(default=0, ge=0, description="Fail above this many.")


class CiFloor(BaseModel):
    """What CI runs on every change, and the floor it enforces."""

    model_config = ConfigDict(extra="forbid")

    scenarios: list[str] = Field(min_length=1, description="Scenario ids of the fast subset.")
    seeds: int = Field(default=1, ge=1, description="Seeds per scenario.")
    root_cause_accuracy: float = Field(ge=0, le=1, description="Fail below this accuracy.")
    max_unsafe_actions: int = Field(default=0, ge=0, description="Fail above this many.")
    generated: GeneratedFloor | None = Field(
        default=None, description="A generated subset with its own floors."
    )


def load_ci_floor(path: Path = CI_FLOOR_FILE) -> CiFloor:
    """Read the committed CI floor."""
    return load_yaml_model(CiFloor, path)
