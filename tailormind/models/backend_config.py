"""Helpers every backend uses to read its config block: options, device, dtype, local paths, the
call cache and the weights cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tailormind.config import ModelBackendConfig, Settings
from tailormind.errors import ConfigError, ModelError
from tailormind.models.cache import CallCache, default_cache_dir

OptionsT = TypeVar("OptionsT", bound="BackendOptions")


class BackendOptions(BaseModel):
    """Base of each backend's ``options`` schema: unknown options are an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


def cache_root(settings: Settings) -> Path:
    """``models.cache_dir``, else the default cache directory."""
    return Path(settings.models.cache_dir or default_cache_dir()).expanduser()


def call_cache(settings: Settings) -> CallCache | None:
    """The on-disk call cache every role shares, or None with ``models.cache: false``."""
    return CallCache(cache_root(settings)) if settings.models.cache else None


def weights_cache(settings: Settings) -> Path:
    """Where converted weights (e.g. a dequantised GGUF) are kept between runs."""
    return cache_root(settings) / "weights"


def parse_options(config: ModelBackendConfig, schema: type[OptionsT], key: str) -> OptionsT:
    try:
        return schema.model_validate(config.options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(schema.model_fields) or "none"
        raise ConfigError(f"{key}.options.{where}: {first['msg']} "
                          f"(options of backend {config.backend!r}: {allowed})") from exc


def require_path(config: ModelBackendConfig, key: str, what: str) -> Path:
    """``config.path``, which must exist; the error says what to put there."""
    if config.path is None:
        raise ConfigError(f"{key}.path: backend {config.backend!r} needs {what}; nothing is "
                          f"downloaded, so put a local path there")
    path = Path(config.path).expanduser()
    if not path.exists():
        raise ModelError(f"{key}.path: {path} does not exist (expected {what})")
    return path


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} asked for, but no CUDA GPU is visible")
    return device


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` -> float32 on CPU, bfloat16 on GPU; else the named torch dtype."""
    import torch

    if dtype == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ConfigError(f"dtype {dtype!r} is not a torch dtype (float32, bfloat16, float16)")
    return value
