"""Loading the watch config from a YAML file plus environment overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

from supervisor._defaults import default_playbooks_dir, default_policy_file
from supervisor._errors import ConfigError
from supervisor._yaml import format_validation_error, read_yaml

from ._model import SupervisorConfig


def load_config(path: Path) -> SupervisorConfig:
    """Read ``path``, apply ``MLOPS_SUPERVISOR_*`` env overrides, validate; ConfigError if bad.

    Relative paths in the file are resolved against the file's directory.
    """
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'models' list; see README")
    return config_from_dict(data, source=str(path), base_dir=path.parent)


def config_from_dict(
    data: dict[str, Any], *, source: str, base_dir: Path | None = None
) -> SupervisorConfig:
    """Validate a config mapping (env overrides applied on top)."""

    class _FromMapping(SupervisorConfig):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # Environment beats the file.
            return (env_settings, init_settings)

    try:
        loaded = _FromMapping(**data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    except SettingsError as err:
        # pydantic-settings names the field but not the variable; complex fields are JSON.
        field = str(err).split('"')[1] if str(err).count('"') >= 2 else "?"
        variable = f"MLOPS_SUPERVISOR_{field.upper()}"
        raise ConfigError(
            f"environment: {variable} is not valid JSON for the field {field!r}; fix: set it "
            f"to a JSON value (e.g. a list of mappings for models) or unset it"
        ) from None
    cfg = SupervisorConfig.model_validate(loaded.model_dump())
    if base_dir is not None:
        for field in ("policy_file", "playbooks_dir", "state_dir"):
            value: Path = getattr(cfg, field)
            if not value.is_absolute():
                setattr(cfg, field, (base_dir / value).resolve())
    # Left out: the files beside the config if there are any, else the ones the package ships
    # (an installed wheel has no policies/ or playbooks/ next to the user's config).
    shipped = {"policy_file": default_policy_file(), "playbooks_dir": default_playbooks_dir()}
    for field, default in shipped.items():
        if field not in loaded.model_fields_set and not getattr(cfg, field).exists():
            setattr(cfg, field, default)
    return cfg
