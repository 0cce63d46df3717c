"""Rendering signal templates into PromQL, and splitting vector results per model and version.

A batch query asks for one signal of many models in a single round-trip: the value and the
sample count, grouped per (model, version) and per model, each tagged with a
``supervisor_part`` label and joined with ``or`` (their label sets differ, so nothing is lost).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from supervisor import BackendError

from ._config import LabelScheme, SignalQuery

#: Label that tells the parts of a batch query apart in its result.
PART_LABEL = "supervisor_part"

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_literal(value: str) -> str:
    """``value`` escaped so an RE2 regex matches it literally."""
    return _RE2_META.sub(r"\\\1", value)


def promql_duration(window: timedelta) -> str:
    """``window`` as a PromQL duration in whole seconds, e.g. ``300s``."""
    seconds = int(window.total_seconds())
    if seconds < 1:
        raise ValueError(f"window must be at least one second, got {window!r}")
    return f"{seconds}s"


@dataclass(frozen=True)
class Selection:
    """Which series a query selects: some models (None: all), optionally one version."""

    models: tuple[str, ...] | None
    version: str | None = None

    def model_matcher(self, scheme: LabelScheme) -> str:
        if self.models is None:
            return f'{scheme.model_label}!=""'
        values = [scheme.label_value(m) for m in self.models]
        if len(values) == 1:
            return f"{scheme.model_label}={promql_string(values[0])}"
        alternatives = "|".join(regex_literal(v) for v in values)
        return f"{scheme.model_label}=~{promql_string(alternatives)}"

    def version_matcher(self, scheme: LabelScheme) -> str:
        if self.version is None:
            return f'{scheme.version_label}=~".*"'
        return f"{scheme.version_label}={promql_string(self.version)}"


def render(
    template: str, scheme: LabelScheme, selection: Selection, *, per_version: bool, window: str
) -> str:
    """Fill ``template``'s placeholders for ``selection``."""
    matchers = [selection.model_matcher(scheme)]
    if selection.version is not None:
        matchers.append(selection.version_matcher(scheme))
    if scheme.extra_selector.strip():
        matchers.append(scheme.extra_selector.strip())
    by = scheme.model_label + (f", {scheme.version_label}" if per_version else "")
    values = {
        "selector": ",".join(matchers),
        "model_selector": selection.model_matcher(scheme),
        "version_selector": selection.version_matcher(scheme),
        "by": by,
        "window": window,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def batch_query(
    signal: SignalQuery,
    scheme: LabelScheme,
    selection: Selection,
    *,
    window: str,
    per_version: bool,
    per_model: bool,
) -> str:
    """One PromQL expression answering ``signal`` for every selected model (and version)."""
    parts = []
    for grouped_by_version in (True, False):
        if not (per_version if grouped_by_version else per_model):
            continue
        for part, template in (("value", signal.value), ("samples", signal.samples)):
            if template is None:
                continue
            expr = render(
                template, scheme, selection, per_version=grouped_by_version, window=window
            )
            parts.append(
                f'label_replace({expr}, "{PART_LABEL}", "{part}", "{scheme.model_label}", ".*")'
            )
    return "\n  or ".join(parts)


@dataclass
class _Parts:
    value: float | None = None
    samples: float | None = None


def split_result(
    result: Any, scheme: LabelScheme, models: Sequence[str], *, query: str, url: str
) -> dict[tuple[str, str | None], tuple[float, int]]:
    """Map a batch query's vector result to ``(model, version) -> (value, samples)``.

    Series of models not asked for are dropped; a NaN value (0/0, a quantile of no
    observations) is no data, so the key is absent.
    """
    if not isinstance(result, list) or any(not isinstance(s, Mapping) for s in result):
        raise BackendError(
            f"Prometheus at {url!r} answered query {query!r} with a {type(result).__name__}, "
            "not an instant vector; check that the signal's template aggregates "
            "`by (${by})` and is not a scalar or range query"
        )
    wanted = {scheme.label_value(m): m for m in models}
    parts: dict[tuple[str, str | None], _Parts] = {}
    for series in result:
        labels = series.get("metric", {})
        label_value = labels.get(scheme.model_label)
        if label_value is None:
            raise BackendError(
                f"Prometheus at {url!r}: a series of query {query!r} lacks the model label "
                f"{scheme.model_label!r} (labels {labels!r}); check that every aggregation in "
                "the template groups `by (${by})`"
            )
        model = wanted.get(label_value)
        if model is None:
            continue
        version = labels.get(scheme.version_label) or None
        slot = parts.setdefault((model, version), _Parts())
        number = _sample_value(series, query=query, url=url)
        if labels.get(PART_LABEL) == "samples":
            slot.samples = number
        else:
            slot.value = number
    return {
        key: (p.value, _count(p.samples))
        for key, p in parts.items()
        if p.value is not None and not math.isnan(p.value)
    }


def _sample_value(series: Mapping[str, Any], *, query: str, url: str) -> float:
    try:
        return float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise BackendError(
            f"Prometheus at {url!r} answered query {query!r} with a malformed sample "
            f"{dict(series)!r}; check that the URL points at the Prometheus HTTP API"
        ) from None


def _count(samples: float | None) -> int:
    if samples is None or not math.isfinite(samples) or samples < 0:
        return 0
    return round(samples)
