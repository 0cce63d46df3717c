"""The simulated models: a real scikit-learn pipeline per version, and the synthetic ground truth.

Ground truth lives in a latent space ``z`` (standard normal per feature when nothing drifts).
Logged features are ``x = mu + sd * z`` in made-up real units, so a unit change or a zero-filled
null is a large outlier rather than a small wobble. The label depends on the first few
("signal") features through a nonlinear function, so a linear model that is good near the
training distribution is wrong far from it: covariate shift genuinely hurts, and retraining on
the shifted window genuinely fixes it. The remaining ("nuisance") features carry no signal;
shifting them is benign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from supervisor.domain import TimeWindow

LABEL_NOISE = 0.35

#: Score a collapsed version gives every row for its class: confident but not exactly 1, as a
#: saturated sigmoid output is, so score histograms stay finite.
COLLAPSED_SCORE = 0.97


def n_signal(n_features: int) -> int:
    """How many leading features the label depends on."""
    return min(3, n_features - 1)


def true_score(z: np.ndarray, eps: np.ndarray, concept: float | np.ndarray) -> np.ndarray:
    """The label's latent score; ``concept`` in [0, 1] (per row, or one for all) turns the
    label function around."""
    k = 1.0 - 2.0 * np.asarray(concept, dtype=float)
    s: np.ndarray = 0.3 + z[:, 0] - 0.5 * z[:, 0] ** 2 + k * (0.9 * z[:, 1] - 0.3 * z[:, 1] ** 2)
    if z.shape[1] > 3:
        s = s + k * 0.6 * z[:, 2]
    out: np.ndarray = s + eps
    return out


def true_labels(z: np.ndarray, eps: np.ndarray, concept: float | np.ndarray) -> np.ndarray:
    """Binary labels (0/1) of latent rows."""
    labels: np.ndarray = (true_score(z, eps, concept) > 0).astype(np.int8)
    return labels


@dataclass
class Scorer:
    """A fitted pipeline compiled to numpy, so scoring a 30-row bucket costs microseconds.

    The pipeline is ``fill missing with 0 -> StandardScaler -> LogisticRegression``; filling with
    0 is what many feature pipelines do, and is why a null spike in real-unit features hurts.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    pipeline: object = field(repr=False)

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Probability of class 1 for rows ``x`` (features in the model's order, NaN allowed)."""
        filled = np.where(np.isnan(x), 0.0, x)
        logit = ((filled - self.mean) / self.scale) @ self.coef + self.intercept
        # Clipped so a unit change (x1000) does not overflow exp.
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))


def fit_scorer(x: np.ndarray, y: np.ndarray) -> Scorer:
    """Fit the real scikit-learn pipeline on ``x``, ``y`` and compile it."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y)) < 2:
        # A window where every label agrees cannot train a classifier; shift one label so
        # the fit succeeds and the (poor) model is judged by validation like any other.
        y = y.copy()
        y[0] = 1 - y[0]
    pipeline = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(solver="liblinear"),
    )
    pipeline.fit(x, y)
    return compile_scorer(pipeline)


def compile_scorer(pipeline: Any) -> Scorer:
    """Compile a fitted ``[imputer ->] StandardScaler -> LogisticRegression`` pipeline.

    The imputer, if any, must fill with 0 (what :meth:`Scorer.proba` does); pipelines fitted
    elsewhere (an MLflow run) on zero-filled data compile the same way.
    """
    from sklearn.pipeline import Pipeline

    steps = list(pipeline) if isinstance(pipeline, Pipeline) else []
    if len(steps) < 2 or not all(hasattr(steps[-2], a) for a in ("mean_", "scale_")):
        raise ValueError(
            f"cannot compile {pipeline!r}: expected a fitted pipeline ending in "
            "StandardScaler -> LogisticRegression"
        )
    scaler, clf = steps[-2], steps[-1]
    if not hasattr(clf, "coef_") or np.asarray(clf.coef_).shape[0] != 1:
        raise ValueError(f"cannot compile {clf!r}: expected a fitted binary linear classifier")
    return Scorer(
        mean=np.asarray(scaler.mean_, dtype=float),
        scale=np.asarray(scaler.scale_, dtype=float),
        coef=np.asarray(clf.coef_[0], dtype=float),
        intercept=float(clf.intercept_[0]),
        pipeline=pipeline,
    )


@dataclass
class Version:
    """One registered version: its model, how it serves, and its registry record."""

    id: str
    created_at: datetime
    scorer: Scorer
    train_x: np.ndarray = field(repr=False)
    skew: tuple[int, float] | None = None
    collapse: int | None = None
    error_add: float = 0.0
    latency_factor: float = 1.0
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    training_window: TimeWindow | None = None

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Serve rows ``x``: the version's serving-time preprocessing, then the model."""
        if self.collapse is not None:
            # A broken version answers one class with the same score for every row.
            return np.full(len(x), COLLAPSED_SCORE if self.collapse == 1 else 1 - COLLAPSED_SCORE)
        if self.skew is not None:
            x = x.copy()
            x[:, self.skew[0]] *= self.skew[1]
        return self.scorer.proba(x)


def holdout_split(n: int, rng: np.random.Generator, share: float = 0.25) -> tuple[np.ndarray, ...]:
    """Indices of a seeded train/holdout split."""
    order = rng.permutation(n)
    cut = max(1, int(n * share))
    return order[cut:], order[:cut]
