"""The world's write side: registry aliases and tags, traffic, retraining, paging.

Every write checks its precondition first and raises :class:`supervisor.ActionError` with the
world unchanged when it fails, so two actors cannot race and a replay cannot double-apply.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import numpy as np

from supervisor import ActionError
from supervisor.domain import TimeWindow
from tools._ports import DeploymentStatus, RetrainResult

from ._core import P_RETRAIN, WorldCore, run_id
from ._model import Version, compile_scorer, fit_scorer, holdout_split
from ._state import ModelState, Serving
from ._stream import rng_for, stable_hash

MIN_RETRAIN_ROWS = 100


class WriteSide(WorldCore):
    """RegistryWriter, DeployWriter, TrainPort and NotifierPort of the simulated world."""

    def _writable(self, model: str) -> ModelState:
        self._sync()
        if model not in self._models:
            raise ActionError(
                f"sim: unknown model {model!r}; the world serves {sorted(self._models)!r}"
            )
        return self._models[model]

    def _version(self, state: ModelState, version: str) -> Version:
        if version not in state.versions:
            raise ActionError(
                f"sim: model {state.name!r} has no version {version!r}; "
                f"registered: {sorted(state.versions, key=int)!r}"
            )
        return state.versions[version]

    # ------------------------------------------------------------------ RegistryWriter

    def set_alias(self, model: str, alias: str, version: str, *, expected: str | None) -> None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (None: unset)."""
        state = self._writable(model)
        self._version(state, version)
        current = state.aliases.get(alias)
        if current != expected:
            raise ActionError(
                f"sim: alias {alias!r} of {model!r} points at {current!r}, not the expected "
                f"{expected!r}; someone else moved it: re-read the registry"
            )
        state.aliases[alias] = version
        state.event(self.now, "alias_moved", version, f"{alias}: {current} -> {version}")
        self.actions["set_alias"] += 1

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Set a version tag."""
        state = self._writable(model)
        self._version(state, version).tags[key] = value
        self.actions["set_tag"] += 1

    # ------------------------------------------------------------------ DeployWriter
    #
    # ``expected_version`` names the version the operation is about, as the caller last saw
    # it: the canary for canary operations, the stable version for serve_version.

    def _expect_canary(self, state: ModelState, expected_version: str) -> str:
        canary = state.serving.canary
        if canary is None or canary != expected_version:
            raise ActionError(
                f"sim: {state.name!r} canary is {canary!r}, not the expected "
                f"{expected_version!r}; re-read the deployment status"
            )
        return canary

    def set_canary_weight(
        self, model: str, weight: int, *, expected_version: str
    ) -> DeploymentStatus:
        """Send ``weight`` percent to the canary, if the canary is ``expected_version``."""
        state = self._writable(model)
        canary = self._expect_canary(state, expected_version)
        if not 0 <= weight <= 100:
            raise ActionError(f"sim: canary weight {weight!r} must be within 0..100")
        old = state.serving
        self._set_serving(state, Serving(self.now, old.stable, canary, weight))
        state.event(self.now, "canary_weight", canary, f"{old.weight}% -> {weight}%")
        self.actions["set_canary_weight"] += 1
        return self._status(state)

    def promote_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """The canary ``expected_version`` becomes stable and takes all traffic."""
        state = self._writable(model)
        canary = self._expect_canary(state, expected_version)
        old = state.serving.stable
        self._set_serving(state, Serving(self.now, canary))
        state.event(self.now, "promoted", canary, f"stable {old} -> {canary}")
        self.actions["promote_canary"] += 1
        return self._status(state)

    def abort_canary(self, model: str, *, expected_version: str) -> DeploymentStatus:
        """Send all traffic back to stable and drop the canary ``expected_version``."""
        state = self._writable(model)
        canary = self._expect_canary(state, expected_version)
        self._set_serving(state, Serving(self.now, state.serving.stable))
        state.event(self.now, "aborted", canary, "canary dropped, all traffic to stable")
        self.actions["abort_canary"] += 1
        return self._status(state)

    def serve_version(
        self, model: str, version: str, *, expected_version: str, canary_weight: int = 0
    ) -> DeploymentStatus:
        """Serve ``version`` as stable (weight 0: rollback or roll-forward) or as a canary.

        ``expected_version`` is the stable version the caller saw. Serving a version as
        stable drops any canary.
        """
        state = self._writable(model)
        self._version(state, version)
        stable = state.serving.stable
        if stable != expected_version:
            raise ActionError(
                f"sim: {model!r} serves {stable!r} as stable, not the expected "
                f"{expected_version!r}; re-read the deployment status"
            )
        if not 0 <= canary_weight <= 100:
            raise ActionError(f"sim: canary weight {canary_weight!r} must be within 0..100")
        if canary_weight == 0:
            self._set_serving(state, Serving(self.now, version))
            if int(version) < int(stable):
                state.event(self.now, "rolled_back", version, f"stable {stable} -> {version}")
                self.actions["rollback"] += 1
            else:
                state.event(self.now, "deployed", version, f"stable {stable} -> {version}")
                self.actions["deploy"] += 1
        else:
            if version == stable:
                raise ActionError(
                    f"sim: version {version!r} of {model!r} is already stable; it cannot also "
                    "be its own canary"
                )
            self._set_serving(state, Serving(self.now, stable, version, canary_weight))
            state.event(self.now, "canary_started", version, f"weight {canary_weight}%")
            self.actions["canary_started"] += 1
        return self._status(state)

    def _status(self, state: ModelState) -> DeploymentStatus:
        serving = state.serving
        return DeploymentStatus(
            model=state.name,
            environment=state.stream.spec.environment,
            stable_version=serving.stable,
            canary_version=serving.canary,
            canary_weight=serving.weight if serving.canary else 0,
            resource_version=str(state.resource_version),
        )

    # ------------------------------------------------------------------ TrainPort

    def retrain(
        self,
        model: str,
        *,
        window: TimeWindow,
        exclude: list[TimeWindow],
        idempotency_key: str,
        min_accuracy: float,
    ) -> RetrainResult:
        """Fit and register a new version on labelled rows of ``window`` minus ``exclude``.

        The new version is tagged with the key, validated on a holdout of the same rows
        (so a model trained on a poisoned window can validate fine and still be worse on
        clean data), aliased ``challenger`` and not served. The same key returns the same run.
        """
        state = self._writable(model)
        if idempotency_key in state.runs:
            return state.runs[idempotency_key]
        x, y, _, excluded = self._labelled(state, window, exclude)
        if len(y) < MIN_RETRAIN_ROWS:
            raise ActionError(
                f"sim: only {len(y)} labelled rows in {window!r} after excluding {excluded} "
                f"(need {MIN_RETRAIN_ROWS}); labels arrive "
                f"{state.stream.spec.label_delay_minutes:g} min late: widen or move the window"
            )
        train, hold = self._split(state, len(y), idempotency_key)
        scorer = fit_scorer(x[train], y[train])
        accuracy = float(((scorer.proba(x[hold]) >= 0.5) == y[hold]).mean())
        passed = accuracy >= min_accuracy
        vid = state.next_version_id()
        run = run_id(model, f"retrain-{idempotency_key}")
        version = Version(
            id=vid,
            created_at=self.now,
            scorer=scorer,
            train_x=x[train],
            tags={
                "validation_status": "passed" if passed else "failed",
                "idempotency_key": idempotency_key,
                "trigger": "retrain",
            },
            metrics={"accuracy": round(accuracy, 4), "training_rows": float(len(train))},
            run_id=run,
            training_window=window,
        )
        state.versions[vid] = version
        state.event(
            self.now, "retrained", vid, f"run {run} on {window.start:%H:%M}-{window.end:%H:%M}"
        )
        state.event(self.now, "registered", vid)
        old = state.aliases.get("challenger")
        state.aliases["challenger"] = vid
        state.event(self.now, "alias_moved", vid, f"challenger: {old} -> {vid}")
        result = RetrainResult(
            run_id=run,
            version=vid,
            idempotency_key=idempotency_key,
            training_window=window,
            excluded_windows=list(exclude),
            metrics=dict(version.metrics),
            validation_passed=passed,
            details={
                "rows_used": len(y),
                "rows_excluded": excluded,
                "holdout_rows": len(hold),
                "min_accuracy": min_accuracy,
            },
        )
        state.runs[idempotency_key] = result
        self.actions["retrain"] += 1
        return result

    def find_run(self, model: str, idempotency_key: str) -> RetrainResult | None:
        """The retrain run started with ``idempotency_key``, if any."""
        self._sync()
        state = self._models.get(model)
        return None if state is None else state.runs.get(idempotency_key)

    def _labelled(
        self, state: ModelState, window: TimeWindow, exclude: list[TimeWindow]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Labelled rows of ``window`` minus ``exclude``: x, y, times (s since start), and
        how many rows the excluded windows removed."""
        labelled = self._seconds(self.now) - state.stream.spec.label_delay_minutes * 60.0
        ws = self._seconds(window.start)
        we = min(self._seconds(window.end), labelled)
        xs, ys, ts = [], [], []
        excluded = 0
        if we > ws:
            if we - ws > 24 * 3600:
                raise ActionError(f"sim: retrain window {window!r} is longer than a day")
            for bucket, sel in self._rows(state, ws, we):
                keep = sel.copy()
                for w in exclude:
                    out = (bucket.rows.t >= self._seconds(w.start)) & (
                        bucket.rows.t < self._seconds(w.end)
                    )
                    excluded += int((keep & out).sum())
                    keep &= ~out
                xs.append(bucket.x[keep])
                ys.append(bucket.rows.labels[keep])
                ts.append(bucket.rows.t[keep])
        x = np.concatenate(xs) if xs else np.empty((0, len(state.stream.features)))
        y = np.concatenate(ys) if ys else np.empty(0, dtype=np.int8)
        t = np.concatenate(ts) if ts else np.empty(0)
        return x, y, t, excluded

    def _split(self, state: ModelState, n: int, idempotency_key: str) -> tuple[np.ndarray, ...]:
        rng = rng_for(self.spec.seed, state.name, P_RETRAIN, stable_hash(idempotency_key))
        return holdout_split(n, rng)

    # ------------------------------------------------------------------ training elsewhere

    def training_frame(
        self,
        model: str,
        *,
        window: TimeWindow,
        exclude: list[TimeWindow],
        idempotency_key: str,
    ) -> Any:
        """The labelled rows of ``window`` as a pandas DataFrame, for training outside the
        world (an MLflow run) on exactly what :meth:`retrain` would fit.

        Columns: one per feature (the model's order; NaN where the pipeline logged none),
        ``label`` (0/1), ``t`` (naive UTC timestamps) and ``holdout`` (True for the rows
        :meth:`retrain` would validate on, given the key). Rows inside ``exclude`` are kept,
        with ``holdout`` False, so the trainer drops them itself. ActionError, as for
        :meth:`retrain`, when fewer than MIN_RETRAIN_ROWS labelled rows remain.
        """
        import pandas as pd

        state = self._writable(model)
        x_all, y_all, t_all, _ = self._labelled(state, window, [])
        # Same rows, same order as _labelled(state, window, exclude): retrain's split applies.
        kept = np.ones(len(t_all), dtype=bool)
        for w in exclude:
            kept &= ~((t_all >= self._seconds(w.start)) & (t_all < self._seconds(w.end)))
        n, excluded = int(kept.sum()), int((~kept).sum())
        if n < MIN_RETRAIN_ROWS:
            raise ActionError(
                f"sim: only {n} labelled rows in {window!r} after excluding {excluded} "
                f"(need {MIN_RETRAIN_ROWS}); labels arrive "
                f"{state.stream.spec.label_delay_minutes:g} min late: widen or move the window"
            )
        _, hold = self._split(state, n, idempotency_key)
        holdout = np.zeros(n, dtype=bool)
        holdout[hold] = True
        frame = pd.DataFrame(x_all, columns=list(state.stream.features))
        frame["label"] = y_all.astype(np.int64)
        start = np.datetime64(self.start.replace(tzinfo=None), "ns")
        frame["t"] = start + (t_all * 1e9).astype("timedelta64[ns]")
        frame["holdout"] = False
        frame.loc[kept, "holdout"] = holdout
        return frame

    def estimator(self, model: str, version: str) -> Any:
        """The fitted scikit-learn pipeline of ``version`` (what a registry would store)."""
        state = self._state(model)
        return self._version(state, version).scorer.pipeline

    def adopt_version(
        self,
        model: str,
        version: str,
        estimator: Any,
        *,
        train_x: np.ndarray,
        metrics: dict[str, float],
        tags: dict[str, str],
        training_window: TimeWindow | None,
        run_id: str | None,
    ) -> None:
        """Register ``version``, a model trained outside the world (an MLflow retrain), so it
        can serve: the world scores with ``estimator`` (a fitted ``[imputer ->]
        StandardScaler -> LogisticRegression`` pipeline on zero-filled features) from then on.

        ``version`` must be the next id, as a registry numbers versions. The version becomes
        ``challenger``, as after :meth:`retrain`; ``train_x`` (raw features, NaN allowed) is its
        training data, the drift reference once it serves. Adopting the same version and run
        again does nothing; any other clash raises ActionError with the world unchanged.
        """
        state = self._writable(model)
        existing = state.versions.get(version)
        if existing is not None:
            if run_id is not None and existing.run_id == run_id:
                return
            raise ActionError(
                f"sim: {model!r} already has a version {version!r} (run {existing.run_id!r}); "
                "the world and the registry disagree on version numbers"
            )
        expected = state.next_version_id()
        if version != expected:
            raise ActionError(
                f"sim: cannot adopt version {version!r} of {model!r}: the next version is "
                f"{expected!r}; the world and the registry disagree on version numbers"
            )
        try:
            scorer = compile_scorer(estimator)
        except ValueError as err:
            raise ActionError(f"sim: {err}") from err
        features = len(state.stream.features)
        if len(scorer.coef) != features or train_x.ndim != 2 or train_x.shape[1] != features:
            raise ActionError(
                f"sim: version {version!r} of {model!r} has {len(scorer.coef)} coefficients and "
                f"training rows of shape {train_x.shape!r}; the model has {features} features"
            )
        state.versions[version] = Version(
            id=version,
            created_at=self.now,
            scorer=scorer,
            train_x=train_x,
            tags=dict(tags),
            metrics=dict(metrics),
            run_id=run_id,
            training_window=training_window,
        )
        state.event(self.now, "retrained", version, f"run {run_id}")
        state.event(self.now, "registered", version)
        old = state.aliases.get("challenger")
        state.aliases["challenger"] = version
        state.event(self.now, "alias_moved", version, f"challenger: {old} -> {version}")
        self.actions["retrain"] += 1

    # ------------------------------------------------------------------ NotifierPort

    def page(self, owner: str, incident_id: str, message: str, *, at: datetime) -> str:
        """Page ``owner``; paging one owner twice about one incident is one page."""
        page_id = "page-" + hashlib.sha256(f"{incident_id}/{owner}".encode()).hexdigest()[:12]
        if not any(p["id"] == page_id for p in self.pages):
            self.pages.append(
                {
                    "id": page_id,
                    "owner": owner,
                    "incident_id": incident_id,
                    "message": message,
                    "at": at.isoformat(),
                }
            )
            self.actions["page"] += 1
        return page_id

    # ------------------------------------------------------------------ ground truth

    def action_counts(self) -> dict[str, int]:
        """How many of each write the world has applied (for evals)."""
        return dict(self.actions)
