"""Training outside the simulated world: exporting a window's rows, adopting the result."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from supervisor import ActionError
from supervisor.domain import MetricName, TimeWindow
from tools.sim import ModelSpec, SimWorld, WorldSpec, build_world

MIN = timedelta(minutes=1)
NOT_FEATURES = ("label", "t", "holdout")


def _world() -> SimWorld:
    world = build_world(
        WorldSpec(seed=11, models=[ModelSpec(name="m", owner="team-m", data_owner="team-data")])
    )
    world.advance(60 * MIN)
    return world


def _fit(frame: Any, *, flip: bool = False) -> Any:
    """What a team's entry point does with the frame: zero-fill, scale, logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = frame[~frame.holdout]
    features = [c for c in frame.columns if c not in NOT_FEATURES]
    y = 1 - train.label if flip else train.label
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    return pipeline.fit(train[features].fillna(0.0).to_numpy(), y)


def test_a_model_fitted_on_the_exported_frame_is_the_one_retrain_fits() -> None:
    world = _world()
    window = TimeWindow(start=world.start, end=world.now)
    half = TimeWindow(start=world.start, end=world.start + 25 * MIN)
    frame = world.training_frame("m", window=window, exclude=[half], idempotency_key="k")
    run = world.retrain("m", window=window, exclude=[half], idempotency_key="k", min_accuracy=0.5)

    inside = (frame.t >= np.datetime64(half.start.replace(tzinfo=None))) & (
        frame.t < np.datetime64(half.end.replace(tzinfo=None))
    )
    # Excluded rows are in the frame (the trainer drops them) and never in the holdout.
    assert int(inside.sum()) == run.details["rows_excluded"] > 0
    assert not frame.holdout[inside].any()
    assert int(frame.holdout.sum()) == run.details["holdout_rows"]
    assert list(frame.columns[-3:]) == ["label", "t", "holdout"]
    assert frame.t.min() >= np.datetime64(world.start.replace(tzinfo=None))

    kept = frame[~inside]
    pipeline = _fit(kept)
    retrained = world.estimator("m", run.version)
    assert np.allclose(pipeline[-1].coef_, retrained[-1].coef_)
    assert np.allclose(pipeline[-2].mean_, retrained[-2].mean_)


def test_the_frame_needs_labelled_rows_like_retrain() -> None:
    world = _world()
    recent = TimeWindow(start=world.now - 8 * MIN, end=world.now)  # labels not in yet
    with pytest.raises(ActionError, match="labelled rows"):
        world.training_frame("m", window=recent, exclude=[], idempotency_key="k")
    with pytest.raises(ActionError, match="unknown model"):
        world.training_frame("nope", window=recent, exclude=[], idempotency_key="k")


def test_an_adopted_version_serves_and_the_world_follows_its_quality() -> None:
    world = _world()
    window = TimeWindow(start=world.start, end=world.now)
    frame = world.training_frame("m", window=window, exclude=[], idempotency_key="bad")
    features = [c for c in frame.columns if c not in NOT_FEATURES]
    train_x = frame.loc[~frame.holdout, features].to_numpy()
    bad = _fit(frame, flip=True)  # a model that learned the labels upside down
    adopt: dict[str, Any] = {
        "train_x": train_x,
        "metrics": {"accuracy": 0.1},
        "tags": {"validation_status": "failed"},
        "training_window": window,
        "run_id": "run-1",
    }

    with pytest.raises(ActionError, match="next version is '3'"):
        world.adopt_version("m", "7", bad, **adopt)
    with pytest.raises(ActionError, match="StandardScaler -> LogisticRegression"):
        world.adopt_version("m", "3", object(), **adopt)
    assert [v.version for v in world.versions("m")] == ["1", "2"]
    assert world.action_counts() == {}

    world.adopt_version("m", "3", bad, **adopt)
    world.adopt_version("m", "3", bad, **adopt)  # the same run again: nothing new
    with pytest.raises(ActionError, match="already has a version '3'"):
        world.adopt_version("m", "3", bad, **{**adopt, "run_id": "run-2"})
    v3 = world.versions("m")[-1]
    assert (v3.version, v3.aliases, v3.run_id) == ("3", ["challenger"], "run-1")
    assert v3.tags == {"validation_status": "failed"} and v3.training_window == window
    assert world.estimator("m", "3") is bad
    assert world.action_counts() == {"retrain": 1}
    assert [e.kind for e in world.timeline("m", world.now)] == [
        "retrained",
        "registered",
        "alias_moved",
    ]

    world.serve_version("m", "3", expected_version="2", canary_weight=50)
    world.advance(40 * MIN)  # labels of the canary's rows arrive
    end = world.now - 15 * MIN
    acc = {
        v: world.read("m", MetricName.ACCURACY, version=v, window=20 * MIN, end=end)
        for v in ("2", "3")
    }
    assert acc["2"] is not None and acc["3"] is not None
    assert acc["3"].value < 0.5 < acc["2"].value
    assert world.evaluate("m", version="3") < 0.5
