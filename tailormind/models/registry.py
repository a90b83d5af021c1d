"""Config -> role object, through the backend table (:mod:`tailormind.core.backends`).

``load_role("text", settings)`` returns a :class:`~tailormind.models.roles.TextModel` built from
``settings.models.text`` by the builder its backend registered; a role is loaded once per process
per config (a second call returns the same object), so a Ray actor or a Serve replica holds one
copy of the weights. ``backend: none`` raises :class:`~tailormind.errors.ModelNotConfiguredError`
with what to configure; callers that can do without the role catch it and record the fallback
(``docs/architecture.md``, "Model roles and backends").
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tailormind.config import ModelBackendConfig, Settings
from tailormind.core.backends import NONE, ROLE_SPECS, ROLES, backend_spec
from tailormind.errors import ConfigError, ModelNotConfiguredError
from tailormind.models.backend_config import cache_root
from tailormind.models.roles import (
    ClipScorer,
    Describer,
    Embedder,
    ImageGenerator,
    Role,
    TextModel,
    VideoGenerator,
)

_loaded: dict[tuple[str, str], Role] = {}
_lock = threading.RLock()  # re-entrant: the slideshow loads the image role


def _memo_key(role: str, settings: Settings) -> tuple[str, str]:
    config = getattr(settings.models, role).model_dump(mode="json")
    extra = {"cache": settings.models.cache, "cache_dir": str(cache_root(settings))}
    if role == "video":
        extra["image"] = settings.models.image.model_dump(mode="json")
    return role, json.dumps([config, extra], sort_keys=True)


def load_role(role: str, settings: Settings) -> Any:
    """The role object for ``settings.models.<role>``, loaded once per process and config."""
    if role not in ROLE_SPECS:
        raise ConfigError(f"unknown model role {role!r}; roles: {', '.join(ROLES)}")
    key = _memo_key(role, settings)
    with _lock:
        if key not in _loaded:
            _quiet_libraries()
            _loaded[key] = _build(role, settings)
        return _loaded[key]


def load_text(settings: Settings) -> TextModel:
    return load_role("text", settings)


def load_embedder(settings: Settings) -> Embedder:
    return load_role("embed", settings)


def load_describer(settings: Settings) -> Describer:
    return load_role("describe", settings)


def load_clip(settings: Settings) -> ClipScorer:
    return load_role("clip", settings)


def load_image(settings: Settings) -> ImageGenerator:
    return load_role("image", settings)


def load_video(settings: Settings) -> VideoGenerator:
    return load_role("video", settings)


def unload_all() -> None:
    """Forget every loaded role (tests; a long-lived process switching configs)."""
    with _lock:
        _loaded.clear()


@dataclass
class RoleStatus:
    role: str
    backend: str
    model: str
    configured: bool
    note: str


def role_status(settings: Settings) -> list[RoleStatus]:
    """What each role is configured as, without loading anything."""
    out = []
    for role in ROLES:
        config: ModelBackendConfig = getattr(settings.models, role)
        spec = backend_spec(role, config.backend)
        configured = config.backend != NONE
        model = spec.bundled or config.model or (str(config.path) if config.path else "")
        note = spec.note or ("" if configured else ROLE_SPECS[role].unconfigured)
        out.append(RoleStatus(role, config.backend, model, configured, note))
    return out


def _quiet_libraries() -> None:
    """Model loading logs progress bars per tensor; the CLI has its own progress display."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _build(role: str, settings: Settings) -> Role:
    """The role built by its backend's registered builder (imported now)."""
    config: ModelBackendConfig = getattr(settings.models, role)
    spec = backend_spec(role, config.backend)
    if not spec.builder:
        raise ModelNotConfiguredError(f"models.{role}: not configured — "
                                      f"{ROLE_SPECS[role].unconfigured}")
    return _builder(spec.builder)(role, config, settings)


def _builder(path: str) -> Callable[[str, ModelBackendConfig, Settings], Role]:
    """``"package.module:function"`` -> the function."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
