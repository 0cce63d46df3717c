"""The world's write side: registry aliases and tags, traffic, retraining, paging.

Every write checks its precondition first and raises :class:`supervisor.ActionError` with the
world unchanged when it fails, so two actors cannot race and a replay cannot double-apply.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np

from supervisor import ActionError
from supervisor.domain import TimeWindow
from tools._ports import DeploymentStatus, RetrainResult

from ._core import P_RETRAIN, WorldCore, run_id
from ._model import Version, fit_scorer, holdout_split
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
        labelled = self._seconds(self.now) - state.stream.spec.label_delay_minutes * 60.0
        ws = self._seconds(window.start)
        we = min(self._seconds(window.end), labelled)
        xs, ys = [], []
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
        x = np.concatenate(xs) if xs else np.empty((0, len(state.stream.features)))
        y = np.concatenate(ys) if ys else np.empty(0, dtype=np.int8)
        if len(y) < MIN_RETRAIN_ROWS:
            raise ActionError(
                f"sim: only {len(y)} labelled rows in {window!r} after excluding {excluded} "
                f"(need {MIN_RETRAIN_ROWS}); labels arrive "
                f"{state.stream.spec.label_delay_minutes:g} min late: widen or move the window"
            )
        rng = rng_for(self.spec.seed, model, P_RETRAIN, stable_hash(idempotency_key))
        train, hold = holdout_split(len(y), rng)
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
