"""Configuration of the Prometheus adapter: where Prometheus is, how patiently to ask it, and
which PromQL answers each serving signal.

Templates are PromQL with ``${name}`` placeholders (``$1`` and other ``$`` uses are left alone,
so ``label_replace`` keeps working):

* ``${selector}``: every label matcher the query needs, comma-separated (model, version and the
  scheme's extra matchers), to be put inside ``{...}``;
* ``${model_selector}`` / ``${version_selector}``: the model and the version matcher alone;
* ``${by}``: the grouping labels, ``model_label, version_label`` or just ``model_label``; every
  aggregation in a template must group ``by (${by})`` so results can be split per model;
* ``${window}``: the range, as a PromQL duration such as ``300s``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from supervisor.domain import MetricName

#: Placeholders a template may use.
PLACEHOLDERS = frozenset({"selector", "model_selector", "version_selector", "by", "window"})

_PLACEHOLDER = re.compile(r"\$\{(\w*)\}")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def placeholders_in(template: str) -> set[str]:
    """The ``${name}`` placeholders used in ``template``."""
    return set(_PLACEHOLDER.findall(template))


def _check_template(template: str) -> str:
    used = placeholders_in(template)
    unknown = used - PLACEHOLDERS
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {sorted(unknown)!r} in {template!r}; "
            f"use only {sorted(PLACEHOLDERS)!r}"
        )
    missing = [p for p in ("by", "window") if p not in used]
    if missing:
        raise ValueError(f"template {template!r} lacks placeholder(s) {missing!r}")
    if not used & {"selector", "model_selector"}:
        raise ValueError(
            f"template {template!r} does not restrict the model; "
            "put ${selector} or ${model_selector} in its series selectors"
        )
    return template


class SignalQuery(_Strict):
    """How to compute one signal: its value, and how many observations the value rests on."""

    value: str = Field(description="PromQL template of the signal's value.")
    samples: str | None = Field(
        default=None,
        description="PromQL template counting the observations behind the value over the "
        "window (requests, histogram observations, gauge samples). None: reported as 0.",
    )

    @field_validator("value", "samples")
    @classmethod
    def _valid_template(cls, v: str | None) -> str | None:
        return None if v is None else _check_template(v)


class LabelScheme(_Strict):
    """Which labels carry the model and the version, and the PromQL of each signal."""

    name: str = Field(description="A name for messages, e.g. 'kserve'.")
    model_label: str = Field(description="Label whose value identifies the model.")
    model_value: str = Field(
        default="{model}",
        description="Value of model_label for a model, '{model}' standing for its name "
        "(KServe: '{model}-predictor').",
    )
    version_label: str = Field(description="Label whose value identifies the version.")
    extra_selector: str = Field(
        default="",
        description="Matchers added to every series selector, e.g. 'namespace=\"prod\"'.",
    )
    templates: dict[MetricName, SignalQuery] = Field(
        description="PromQL per signal; a signal without a template has no data."
    )

    @field_validator("model_label", "version_label")
    @classmethod
    def _valid_label(cls, v: str) -> str:
        if not _LABEL_NAME.match(v) or v.startswith("__"):
            raise ValueError(f"{v!r} is not a usable Prometheus label name")
        return v

    @field_validator("model_value")
    @classmethod
    def _one_model_slot(cls, v: str) -> str:
        if v.count("{model}") != 1 or v.replace("{model}", "").count("{") > 0:
            raise ValueError(f"model_value {v!r} must contain '{{model}}' exactly once")
        return v

    @model_validator(mode="after")
    def _distinct_labels(self) -> LabelScheme:
        if self.model_label == self.version_label:
            raise ValueError(f"model_label and version_label are both {self.model_label!r}")
        return self

    def label_value(self, model: str) -> str:
        """The value of ``model_label`` that identifies ``model``."""
        return self.model_value.replace("{model}", model)

    def model_of(self, label_value: str) -> str | None:
        """The model a ``model_label`` value names, or None if it does not fit the pattern."""
        prefix, _, suffix = self.model_value.partition("{model}")
        if (
            len(label_value) > len(prefix) + len(suffix)
            and label_value.startswith(prefix)
            and label_value.endswith(suffix)
        ):
            return label_value[len(prefix) : len(label_value) - len(suffix)]
        return None


SchemeName = Literal["model_labels", "kserve", "fastapi"]


class PrometheusConfig(_Strict):
    """Settings of the Prometheus metrics and alerts adapter."""

    url: str = Field(description="Base URL of the Prometheus HTTP API, e.g. http://prom:9090.")
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="Per-request timeout.")
    retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts on connection errors, timeouts, 5xx."
    )
    backoff_s: float = Field(default=0.5, ge=0, description="First wait between attempts.")
    backoff_max_s: float = Field(default=5.0, ge=0, description="Longest wait between attempts.")
    label_scheme: SchemeName | LabelScheme = Field(
        default="model_labels",
        description="A built-in scheme ('model_labels', 'kserve', 'fastapi') or a full one.",
    )
    templates: dict[MetricName, SignalQuery] = Field(
        default_factory=dict, description="Templates that replace the scheme's, per signal."
    )
    max_models_in_selector: int = Field(
        default=100,
        ge=1,
        description="Above this many models a batch query selects every model and filters "
        "client-side, which keeps the query short.",
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=16, description="Queries of one observe() sent at the same time."
    )
    snapshot_max_age_s: float = Field(
        default=60.0, ge=0, description="How long read() may answer from the last observe()."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL such as 'http://prometheus:9090'")
        return v.rstrip("/")

    def scheme(self) -> LabelScheme:
        """The label scheme in force: the built-in or given one, with ``templates`` applied."""
        from ._schemes import BUILTIN_SCHEMES

        base = (
            BUILTIN_SCHEMES[self.label_scheme]
            if isinstance(self.label_scheme, str)
            else self.label_scheme
        )
        if not self.templates:
            return base
        return base.model_copy(update={"templates": {**base.templates, **self.templates}})
