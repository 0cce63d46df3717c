"""Loading policy files: the committed schema, default.yaml, and rejected files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import supervisor.policy
from supervisor import ConfigError
from supervisor.policy import Policy, load_policy, policy_schema

ROOT = Path(__file__).resolve().parent.parent

GOOD_HEAD = """\
version: 1
approver_groups:
  ml-oncall: [alice]
defaults:
  approvers: [ml-oncall]
"""


def test_public_exports() -> None:
    assert set(supervisor.policy.__all__) == {
        "DEFAULT_RULE_ID",
        "SEVERITY",
        "ActionHistory",
        "FixedFreeze",
        "Policy",
        "PolicyDefaults",
        "PolicyEngine",
        "RateLimit",
        "Rule",
        "RuleMatch",
        "WeeklyFreeze",
        "approval_deadline",
        "load_policy",
        "parse_policy",
        "policy_schema",
    }
    for name in supervisor.policy.__all__:
        assert getattr(supervisor.policy, name) is not None


def test_committed_schema_is_current() -> None:
    committed = (ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8")
    assert committed == policy_schema(), (
        "schemas/policy.schema.json is stale; regenerate it with "
        "python -c 'from supervisor.policy import policy_schema; print(policy_schema(), end=\"\")'"
        " > schemas/policy.schema.json"
    )


def test_default_policy_loads_and_points_at_the_schema() -> None:
    path = ROOT / "policies" / "default.yaml"
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schemas/policy.schema.json"
    policy = load_policy(path)
    assert isinstance(policy, Policy)
    assert policy.defaults.verdict == "deny"
    assert policy.defaults.dry_run is False
    assert len({r.id for r in policy.rules}) == len(policy.rules)


def test_schema_describes_fields_and_forbids_extras() -> None:
    schema = json.loads(policy_schema())
    rule = schema["$defs"]["Rule"]
    assert rule["additionalProperties"] is False
    assert "description" in rule["properties"]["effect"]
    weekly = schema["$defs"]["WeeklyFreeze"]["properties"]
    assert "from" in weekly  # the alias, as written in YAML


def load_text(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def rejected(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert str(tmp_path / "policy.yaml") in message
    return message


RULE = """\
rules:
  - id: r1
    description: test
    effect: {effect}
    match:
      {match}
"""


def test_minimal_policy_loads(tmp_path: Path) -> None:
    policy = load_text(tmp_path, "version: 1\n")
    assert policy.rules == []
    assert policy.defaults.verdict == "deny"


def test_unknown_field_names_its_path(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="deny", match="action: [retrain]")
    message = rejected(tmp_path, text)
    assert "rules.0.match.action: Extra inputs are not permitted" in message
    assert "fix: remove this field or check its spelling" in message


def test_bad_effect_lists_allowed_values(tmp_path: Path) -> None:
    message = rejected(tmp_path, GOOD_HEAD + RULE.format(effect="block", match="{}"))
    assert "rules.0.effect:" in message
    assert "'block'" in message
    assert "fix: use one of 'allow', 'deny' or 'require_approval'" in message


def test_unknown_action_lists_allowed_values(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="deny", match="actions: [retrain, redeploy]")
    message = rejected(tmp_path, text)
    assert "rules.0.match.actions.1:" in message
    assert "'redeploy'" in message
    assert "fix: use one of 'retrain', 'rollback'" in message


def test_unknown_root_cause_lists_allowed_values(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="deny", match="not_root_causes: [drift]")
    message = rejected(tmp_path, text)
    assert "rules.0.match.not_root_causes.0:" in message
    assert "'covariate_drift'" in message


def test_unknown_approver_group(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="require_approval", match="{}")
    text += "    approvers: [ml-on-call]\n"
    message = rejected(tmp_path, text)
    assert "rules.0.approvers.0: unknown approver group 'ml-on-call'" in message
    assert "fix: use one of ['ml-oncall'] or define it under approver_groups" in message


def test_require_approval_needs_someone_to_approve(tmp_path: Path) -> None:
    text = "version: 1\n" + RULE.format(effect="require_approval", match="{}")
    message = rejected(tmp_path, text)
    assert "defaults.approvers: a require_approval verdict names no approver group" in message


def test_approvers_on_a_non_approval_rule(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="allow", match="{}") + "    approvers: [ml-oncall]\n"
    message = rejected(tmp_path, text)
    assert "rules.0.approvers: only applies to require_approval rules" in message
    assert "fix: remove approvers or set effect: require_approval" in message


def test_duplicate_rule_id(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(effect="deny", match="{}")
    text += "  - {id: r1, description: again, effect: allow}\n"
    message = rejected(tmp_path, text)
    assert "rules.1.id: duplicate rule id 'r1' (first used by rules.0)" in message
    assert "fix: give every rule a unique id" in message


def test_reserved_rule_id(tmp_path: Path) -> None:
    text = GOOD_HEAD + "rules:\n  - {id: default, description: x, effect: allow}\n"
    assert "rules.0.id: 'default' is reserved" in rejected(tmp_path, text)


def test_empty_file(tmp_path: Path) -> None:
    message = rejected(tmp_path, "# only a comment\n")
    assert "the file is empty" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    message = rejected(tmp_path, "version: 1\nrules: [\n")
    assert "not valid YAML" in message
    assert "fix the syntax" in message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    assert "(top level)" in rejected(tmp_path, "- version: 1\n")


def test_wrong_version(tmp_path: Path) -> None:
    assert "version: Input should be 1 (got 2); fix: use one of 1" in rejected(
        tmp_path, "version: 2\n"
    )


def test_unquoted_time_is_explained(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(
        effect="deny", match="freeze: [{weekdays: [sat], from: 18:00, to: '20:00'}]"
    )
    message = rejected(tmp_path, text)
    assert "rules.0.match.freeze.0.weekly.from: 1080 is a number, not a time" in message
    assert 'fix: quote the time, e.g. "18:00"' in message


def test_bad_weekday_and_overnight_window(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(
        effect="deny",
        match="freeze: [{weekdays: [saturday]}, {weekdays: [sat], from: '22:00', to: '02:00'}]",
    )
    message = rejected(tmp_path, text)
    assert "rules.0.match.freeze.0.weekly.weekdays.0:" in message
    assert "'mon'" in message
    assert "rules.0.match.freeze.1.weekly.to: '02:00' is before from '22:00'" in message
    assert "split it into two windows" in message


def test_fixed_freeze_needs_timezone_and_order(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(
        effect="deny",
        match="freeze: [{start: 2026-12-24T00:00:00, end: 2026-12-25T00:00:00Z}, "
        "{start: 2026-12-24T00:00:00Z, end: 2026-12-23T00:00:00Z}]",
    )
    message = rejected(tmp_path, text)
    assert "rules.0.match.freeze.0.fixed.start: '2026-12-24T00:00:00' has no timezone" in message
    assert "rules.0.match.freeze.1.fixed.end: '2026-12-23T00:00:00+00:00' is not after start" in (
        message
    )


def test_contradictory_conditions(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(
        effect="deny",
        match="{root_causes: [infrastructure], not_root_causes: [infrastructure], "
        "confidence_below: 0.5, confidence_at_least: 0.8}",
    )
    message = rejected(tmp_path, text)
    assert "rules.0.match.not_root_causes: ['infrastructure'] also listed in root_causes" in message
    assert "rules.0.match.confidence_below: 0.5 <= confidence_at_least 0.8" in message


def test_bad_rate_limit_and_empty_lists(tmp_path: Path) -> None:
    text = GOOD_HEAD + RULE.format(
        effect="deny", match="{rate_limit: {max: 0, per_hours: 24}, actions: []}"
    )
    message = rejected(tmp_path, text)
    assert "rules.0.match.rate_limit.max: Input should be greater than or equal to 1" in message
    assert "rules.0.match.actions: List should have at least 1 item" in message
