"""The watch config: valid files load, env overrides apply, bad files name field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import ConfigError
from supervisor.config import load_config

GOOD = """
models:
  - name: churn
    owner: growth-ml
    data_owner: data-platform
    deployment: {kind: kserve, namespace: ml, name: churn-isvc}
    signals:
      - {metric: error_rate, threshold: 0.02}
    data: {reference: file:///data/churn/ref.parquet, current: /data/churn/logs}
policy_file: policies/default.yaml
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_valid_config_loads_and_resolves_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    m = cfg.model_for("churn")
    assert m is not None and m.deployment.kind == "kserve" and m.signals[0].threshold == 0.02
    assert cfg.policy_file == (tmp_path / "policies" / "default.yaml").resolve()
    assert cfg.limits.max_tool_calls == 24


def test_env_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SUPERVISOR_LIMITS__MAX_TOOL_CALLS", "7")
    monkeypatch.setenv("MLOPS_SUPERVISOR_REASONER", "hybrid")
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.limits.max_tool_calls == 7
    assert cfg.reasoner == "hybrid"


@pytest.mark.parametrize(
    ("text", "path", "fix"),
    [
        (GOOD.replace("owner: growth-ml", "ownr: growth-ml"), "models.0.ownr", "remove this field"),
        (GOOD.replace("kind: kserve", "kind: helm"), "models.0.deployment.kind", "use one of"),
        (
            GOOD.replace("metric: error_rate", "metric: errors"),
            "models.0.signals.0.metric",
            "use one of",
        ),
        (
            GOOD.replace("threshold: 0.02", "threshold: lots"),
            "models.0.signals.0.threshold",
            "correct the value",
        ),
        ("models: []\n", "models", "correct the value"),
        (
            GOOD.replace("policy_file:", "  - {name: churn, owner: x}\npolicy_file:"),
            "duplicate",
            "listed twice",
        ),
    ],
)
def test_bad_config_names_field_and_fix(tmp_path: Path, text: str, path: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    msg = str(err.value)
    assert str(tmp_path / "config.yaml") in msg
    assert (path in msg) or (path == "duplicate" and "listed twice" in msg), msg
    assert fix in msg, msg


def test_bad_env_override_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_SUPERVISOR_LIMITS__MAX_TOOL_CALLS", "-3")
    with pytest.raises(ConfigError, match=r"limits\.max_tool_calls"):
        load_config(write(tmp_path, GOOD))


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "models: [\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_a_complex_field_from_the_environment_that_is_not_json_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """L3: this used to end in a pydantic-settings traceback."""
    monkeypatch.setenv("MLOPS_SUPERVISOR_MODELS", "not-json")
    with pytest.raises(ConfigError, match="MLOPS_SUPERVISOR_MODELS is not valid JSON"):
        load_config(write(tmp_path, GOOD))


def test_an_otlp_endpoint_that_is_not_a_url_is_rejected(tmp_path: Path) -> None:
    text = GOOD + "telemetry: {otlp_endpoint: not a url}\n"
    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint: .*not an http\(s\) URL"):
        load_config(write(tmp_path, text))


def test_a_state_dir_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    """L3: this used to end in a FileExistsError traceback at start."""
    from supervisor.runtime import Supervisor
    from supervisor.telemetry import TelemetryConfig, setup_tracing
    from tools.sim import build_world, demo_world_spec

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    config = load_config(write(tmp_path, GOOD + f"state_dir: {blocker}/state\n"))
    world = build_world(demo_world_spec())
    with pytest.raises(ConfigError, match=r"state_dir .* cannot be created.*fix: set state_dir"):
        Supervisor(
            config,
            read=world.read_backends(),
            write=world.write_backends(),
            clock=world.clock,
            tracing=setup_tracing(TelemetryConfig()),
        )
