"""The registry port on the MLflow 3 model registry: versions, aliases, tags, lineage,
the timeline, and the two alias actions (promote, rollback).

MLflow has no compare-and-set for aliases. :meth:`MlflowRegistry.set_alias` narrows the race:
it reads the alias, compares it with ``expected`` (ActionError, nothing written, if it moved),
sets it, and reads it again. A writer that moves the alias *after* our write is detected
(ActionError: we lost the race, the registry shows the other writer's choice). The residual
race: a writer that moves the alias in the one round trip between our read and our write is
overwritten without notice. Run one supervisor replica per registry (the service's leader
lock) and keep humans to the supervisor's commands, and that window stays empty.

An answer that never came (timeout, 5xx after MLflow's own retries) leaves the outcome
unknown; the adapter then re-reads the alias and reports what the registry really shows.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from supervisor import ActionError, BackendError, Clock, SystemClock
from supervisor.domain import TimeWindow
from tools._ports import ChangeEvent, ModelVersionInfo

from . import _history
from ._client import NotFound, Rejected, Unavailable, action_error, backend_error, classify, connect
from ._config import MlflowConnection

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Run params/tags the lineage reads; the retrain harness writes them.
WINDOW_START, WINDOW_END, EXCLUDED = (
    "training_window_start",
    "training_window_end",
    "excluded_windows",
)


class VersionLineage(BaseModel):
    """Where a version came from: its run, the data it saw and the code that made it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str
    created_at: datetime
    source: str = Field(description="The model URI the version was registered from.")
    run_id: str | None = None
    experiment_id: str | None = None
    data_ref: str | None = Field(default=None, description="Input data reference of the run.")
    datasets: list[str] = Field(
        default_factory=list, description="MLflow dataset inputs as 'name (digest) from source'."
    )
    code_version: str | None = Field(default=None, description="mlflow.source.git.commit.")
    source_name: str | None = Field(default=None, description="mlflow.source.name.")
    training_window: TimeWindow | None = None
    excluded_windows: list[TimeWindow] = Field(default_factory=list)
    params: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict, description="Version tags.")


class AliasChange(BaseModel):
    """What promote or rollback did."""

    model_config = ConfigDict(extra="forbid")

    model: str
    alias: str
    previous: str | None
    version: str
    kind: str
    already_done: bool = Field(default=False, description="The alias was already there.")


class MlflowRegistry:
    """RegistryReader and RegistryWriter over an MLflow tracking server or local store."""

    def __init__(
        self,
        connection: MlflowConnection,
        *,
        clock: Clock | None = None,
        client: MlflowClient | None = None,
    ) -> None:
        self.connection = connection
        self._clock = clock or SystemClock()
        self._client_obj = client

    @property
    def client(self) -> MlflowClient:
        """The MLflow client, built on first use (so importing this adapter stays cheap)."""
        if self._client_obj is None:
            self._client_obj = connect(self.connection)
        return self._client_obj

    # ------------------------------------------------------------------ RegistryReader

    def versions(self, model: str) -> list[ModelVersionInfo]:
        """All versions of ``model``, oldest first. BackendError if it does not exist."""
        registered = self._registered(model, BackendError)
        # Search results carry no aliases: the registered model has them all.
        by_version: dict[str, list[str]] = {}
        for alias, target in (registered.aliases or {}).items():
            by_version.setdefault(str(target), []).append(alias)
        out = []
        for mv in self._model_versions(model):
            run = self._run(mv.run_id)
            out.append(
                ModelVersionInfo(
                    model=model,
                    version=str(mv.version),
                    created_at=_history.created_at(mv),
                    aliases=sorted(by_version.get(str(mv.version), [])),
                    tags=dict(mv.tags or {}),
                    metrics=dict(run.data.metrics) if run else {},
                    run_id=mv.run_id or None,
                    training_window=_window(run),
                )
            )
        return out

    def timeline(self, model: str, since: datetime) -> list[ChangeEvent]:
        """What changed for ``model`` since ``since``, oldest first (see ``_history``)."""
        registered = self._registered(model, BackendError)
        return _history.timeline(registered, self._model_versions(model), since)

    def lineage(self, model: str, version: str) -> VersionLineage:
        """Version -> run -> input data reference and code version."""
        mv = self._version(model, version, BackendError)
        run = self._run(mv.run_id)
        params = dict(run.data.params) if run else {}
        run_tags = dict(run.data.tags) if run else {}
        datasets = []
        if run is not None and run.inputs is not None:
            for di in run.inputs.dataset_inputs or []:
                d = di.dataset
                datasets.append(f"{d.name} ({d.digest}) from {d.source}")
        return VersionLineage(
            model=model,
            version=str(mv.version),
            created_at=_history.created_at(mv),
            source=str(mv.source),
            run_id=mv.run_id or None,
            experiment_id=run.info.experiment_id if run else None,
            data_ref=params.get("data_ref") or run_tags.get("data_ref"),
            datasets=datasets,
            code_version=run_tags.get("mlflow.source.git.commit"),
            source_name=run_tags.get("mlflow.source.name"),
            training_window=_window(run),
            excluded_windows=_excluded(run),
            params=params,
            metrics=dict(run.data.metrics) if run else {},
            tags=dict(mv.tags or {}),
        )

    def aliases(self, model: str) -> dict[str, str]:
        """Where each alias of ``model`` points now."""
        return {k: str(v) for k, v in (self._registered(model, BackendError).aliases or {}).items()}

    # ------------------------------------------------------------------ RegistryWriter

    def set_alias(self, model: str, alias: str, version: str, *, expected: str | None) -> None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (None: unset).

        ActionError, with nothing written, when the alias moved, the model or version does not
        exist, or ``alias`` is ``champion`` and the version failed validation.
        """
        self._move(model, alias, version, expected=expected)

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Set a version tag (setting the same value again is harmless)."""
        self._version(model, version, ActionError)
        try:
            classify(
                self.connection,
                lambda: self.client.set_model_version_tag(model, version, key, value),
            )
        except (Unavailable, Rejected, NotFound) as err:
            raise action_error(
                self.connection,
                f"setting tag {key!r}={value!r} on {model!r} version {version!r}",
                err,
                "the tag may or may not be set; setting it again is safe",
            ) from err

    # ------------------------------------------------------------------ actions

    def promote(self, model: str, version: str, *, expected_champion: str | None) -> AliasChange:
        """The challenger ``version`` becomes champion; it loses the challenger alias.

        Refused (ActionError, nothing written) unless ``version`` is the challenger, passed
        validation (tag ``validation_status=passed``) and the champion is ``expected_champion``.
        Re-running after a crash finishes the bookkeeping instead of failing.
        """
        aliases = self.aliases(model)
        mv = self._version(model, version, ActionError)
        champion = aliases.get(CHAMPION)
        if champion == version:  # already promoted (a replay): finish the tags only
            self._promotion_tags(model, version, None)
            return AliasChange(
                model=model, alias=CHAMPION, previous=None, version=version,
                kind="promoted", already_done=True,
            )  # fmt: skip
        if aliases.get(CHALLENGER) != version:
            raise ActionError(
                f"mlflow: version {version!r} of {model!r} is not the challenger "
                f"(challenger is {aliases.get(CHALLENGER)!r}); re-read the registry"
            )
        status = (mv.tags or {}).get("validation_status")
        if status != "passed":
            raise ActionError(
                f"mlflow: challenger {version!r} of {model!r} has validation_status={status!r}, "
                "not 'passed'; only a validated version can become champion"
            )
        self._move(model, CHAMPION, version, expected=expected_champion, kind="promoted")
        self._promotion_tags(model, version, champion)
        return AliasChange(
            model=model, alias=CHAMPION, previous=champion, version=version, kind="promoted"
        )

    def rollback(self, model: str, *, expected_champion: str) -> AliasChange:
        """Champion moves back to the previous validated version.

        The previous version is the one champion pointed at before it moved to the current
        one (from the alias log), if it did not fail validation; otherwise the newest older
        version tagged ``validation_status=passed``. ActionError if there is none.
        """
        registered = self._registered(model, ActionError)
        current = (registered.aliases or {}).get(CHAMPION)
        current = None if current is None else str(current)
        if current != expected_champion:
            raise ActionError(
                f"mlflow: champion of {model!r} is {current!r}, not the expected "
                f"{expected_champion!r}; someone else moved it: re-read the registry"
            )
        target = self._rollback_target(model, registered, expected_champion)
        self._move(model, CHAMPION, target, expected=expected_champion, kind="rolled_back")
        for v, key in ((expected_champion, "rolled_back_at"), (target, "restored_at")):
            self._best_effort_tag(model, v, f"mlops_supervisor.{key}", self._now())
        return AliasChange(
            model=model, alias=CHAMPION, previous=expected_champion, version=target,
            kind="rolled_back",
        )  # fmt: skip

    # ------------------------------------------------------------------ internals

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def _rollback_target(self, model: str, registered: RegisteredModel, current: str) -> str:
        versions = {str(mv.version): mv for mv in self._model_versions(model)}

        def usable(v: str | None) -> bool:
            return v in versions and (versions[v].tags or {}).get("validation_status") != "failed"

        log_moves = [
            m for m in _history.read_log(dict(registered.tags or {})) if m.alias == CHAMPION
        ]
        for move in reversed(log_moves):
            if move.version == current:
                if move.previous != current and usable(move.previous):
                    return str(move.previous)
                break
        older = [
            v
            for v, mv in versions.items()
            if v.isdigit()
            and current.isdigit()
            and int(v) < int(current)
            and (mv.tags or {}).get("validation_status") == "passed"
        ]
        if not older:
            raise ActionError(
                f"mlflow: {model!r} has no validated version to roll back to from champion "
                f"{current!r} (none older tagged validation_status=passed); "
                "pick a version and move the alias by hand"
            )
        return max(older, key=int)

    def _move(
        self,
        model: str,
        alias: str,
        version: str,
        *,
        expected: str | None,
        kind: _history.MoveKind | None = None,
    ) -> None:
        mv = self._version(model, version, ActionError)
        if alias == CHAMPION and (mv.tags or {}).get("validation_status") == "failed":
            raise ActionError(
                f"mlflow: version {version!r} of {model!r} failed validation "
                "(tag validation_status=failed); it can never become champion"
            )
        current = self._alias_now(model, alias, ActionError)
        if current != expected:
            raise ActionError(
                f"mlflow: alias {alias!r} of {model!r} points at {current!r}, not the expected "
                f"{expected!r}; someone else moved it: re-read the registry"
            )
        if current == version:
            return  # expected == version: already in the intended state
        what = f"moving alias {alias!r} of {model!r} from {expected!r} to {version!r}"
        try:
            classify(
                self.connection,
                lambda: self.client.set_registered_model_alias(model, alias, version),
            )
        except (Unavailable, Rejected, NotFound) as err:
            # No clear answer: look at what the registry really shows before saying anything.
            try:
                after = self._alias_now(model, alias, ActionError)
            except ActionError:
                raise action_error(
                    self.connection, what, err,
                    "the registry could not be re-read, so whether the alias moved is unknown: "
                    "re-read it before acting again",
                ) from err  # fmt: skip
            if after != version:
                raise action_error(
                    self.connection, what, err, f"the alias still points at {after!r}"
                ) from err
            log.warning("%s: the answer was lost but the alias moved: %s", what, err)
        after = self._alias_now(model, alias, ActionError)
        if after != version:
            raise ActionError(
                f"mlflow: {what}: lost a race: right after the write the alias points at "
                f"{after!r}; another writer moved it: re-read the registry"
            )
        move = _history.AliasMove(
            alias=alias,
            previous=expected,
            version=version,
            at=self._clock.now(),
            kind=kind or _history.move_kind(alias, expected, version),
        )
        key, value = move.tag()
        try:
            classify(
                self.connection, lambda: self.client.set_registered_model_tag(model, key, value)
            )
        except (Unavailable, Rejected, NotFound) as err:
            # The move happened; the timeline will show it as a move made outside.
            log.warning("%s: moved, but the alias log entry was not written: %s", what, err)

    def _promotion_tags(self, model: str, version: str, previous: str | None) -> None:
        now = self._now()
        self._best_effort_tag(model, version, "mlops_supervisor.promoted_at", now)
        if previous is not None:
            self._best_effort_tag(model, version, "mlops_supervisor.previous_champion", previous)
            self._best_effort_tag(model, previous, "mlops_supervisor.superseded_by", version)
        if self.aliases(model).get(CHALLENGER) == version:
            try:
                classify(
                    self.connection,
                    lambda: self.client.delete_registered_model_alias(model, CHALLENGER),
                )
            except (Unavailable, Rejected, NotFound) as err:
                log.warning("mlflow: %r: challenger alias not removed: %s", model, err)

    def _best_effort_tag(self, model: str, version: str, key: str, value: str) -> None:
        try:
            classify(
                self.connection,
                lambda: self.client.set_model_version_tag(model, version, key, value),
            )
        except (Unavailable, Rejected, NotFound) as err:
            log.warning("mlflow: tag %s on %r version %s not written: %s", key, model, version, err)

    def _registered(self, model: str, error: type[BackendError | ActionError]) -> RegisteredModel:
        try:
            return classify(self.connection, lambda: self.client.get_registered_model(model))
        except NotFound as err:
            raise error(
                f"mlflow: no registered model {model!r} in {self.connection.registry!r}; "
                "check the model name in the watch config (names are case-sensitive)"
            ) from err
        except (Unavailable, Rejected) as err:
            raise self._fail(error, f"reading registered model {model!r}", err) from err

    def _alias_now(
        self, model: str, alias: str, error: type[BackendError | ActionError]
    ) -> str | None:
        target = (self._registered(model, error).aliases or {}).get(alias)
        return None if target is None else str(target)

    def _version(
        self, model: str, version: str, error: type[BackendError | ActionError]
    ) -> ModelVersion:
        try:
            return classify(self.connection, lambda: self.client.get_model_version(model, version))
        except (NotFound, Rejected) as err:
            self._registered(model, error)  # names a missing model rather than the version
            raise error(
                f"mlflow: model {model!r} has no version {version!r}; "
                f"registered: {[str(m.version) for m in self._model_versions(model)]!r}"
            ) from err
        except Unavailable as err:
            raise self._fail(error, f"reading version {version!r} of {model!r}", err) from err

    def _model_versions(self, model: str) -> list[ModelVersion]:
        name = model.replace("'", "\\'")
        try:
            found = classify(
                self.connection, lambda: list(self.client.search_model_versions(f"name='{name}'"))
            )
        except (NotFound, Rejected, Unavailable) as err:
            raise backend_error(self.connection, f"listing versions of {model!r}", err) from err
        return sorted(found, key=lambda mv: int(mv.version))

    def _run(self, run_id: str | None) -> Run | None:
        if not run_id:
            return None
        try:
            return classify(self.connection, lambda: self.client.get_run(run_id))
        except (NotFound, Rejected):
            return None  # a deleted run: the version still exists, its lineage is gone
        except Unavailable as err:
            raise backend_error(self.connection, f"reading run {run_id!r}", err) from err

    def _fail(
        self, error: type[BackendError | ActionError], what: str, err: Exception
    ) -> BackendError | ActionError:
        if error is ActionError:
            return action_error(self.connection, what, err, "nothing was changed")
        return backend_error(self.connection, what, err)


def _window(run: Run | None) -> TimeWindow | None:
    if run is None:
        return None
    params: dict[str, Any] = {**run.data.tags, **run.data.params}
    start, end = params.get(WINDOW_START), params.get(WINDOW_END)
    if not start or not end:
        return None
    try:
        return TimeWindow(start=datetime.fromisoformat(start), end=datetime.fromisoformat(end))
    except ValueError:
        return None


def _excluded(run: Run | None) -> list[TimeWindow]:
    if run is None:
        return []
    raw = run.data.params.get(EXCLUDED) or run.data.tags.get(EXCLUDED)
    if not raw:
        return []
    import json

    try:
        return [TimeWindow.model_validate(w) for w in json.loads(raw)]
    except (ValueError, TypeError):
        return []
