"""One builder per backend: a role's config block -> the role object.

Each is named by a :class:`~tailormind.core.backends.BackendSpec` (``"tailormind.models.builders:
<name>"``) and called by :func:`tailormind.models.registry.load_role` as
``builder(role, config, settings)``. A builder validates the block's ``options`` and paths (a
:class:`~tailormind.errors.ConfigError` naming ``models.<role>.<field>``) and imports its model
library only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailormind.config import ModelBackendConfig, Settings
from tailormind.core.backends import backend_spec
from tailormind.errors import ConfigError, ModelError
from tailormind.models.backend_config import (
    BackendOptions,
    call_cache,
    parse_options,
    require_path,
    weights_cache,
)
from tailormind.models.roles import Role
from tailormind.models.types import GenerationParams


class NoOptions(BackendOptions):
    """Backends without options: any option is an error."""


def _common(config: ModelBackendConfig, settings: Settings, model_id: str) -> dict[str, Any]:
    return {"backend": config.backend, "model_id": model_id, "cache": call_cache(settings)}


def _params(config: ModelBackendConfig) -> GenerationParams:
    return GenerationParams(max_tokens=config.max_tokens, temperature=config.temperature)


def _key(role: str) -> str:
    return f"models.{role}"


def serve(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.serve_handles import build_serve_role

    model_id = config.model or f"serve:{role}"
    return build_serve_role(role, config, _common(config, settings, model_id))


def openai(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.openai_http import (
        OpenAIDescriber,
        OpenAIEmbedder,
        OpenAIOptions,
        OpenAIText,
        make_client,
    )

    key = _key(role)
    client = make_client(config, key)
    options = parse_options(config, OpenAIOptions, key)
    model, common = str(config.model), _common(config, settings, str(config.model))
    if role == "text":
        return OpenAIText(client, model, options, json_retries=config.json_retries,
                          default_params=_params(config), **common)
    if role == "embed":
        return OpenAIEmbedder(client, model, options, batch_size=config.batch_size, **common)
    return OpenAIDescriber(client, model, options, default_params=_params(config), **common)


def smollm2(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.assets import SMOLLM2_ID, smollm2_gguf
    from tailormind.models.text_transformers import SmolLM2Options, TransformersText

    key = _key(role)
    options = parse_options(config, SmolLM2Options, key)
    gguf = Path(config.path) if config.path else smollm2_gguf()
    if not gguf.is_file():
        raise ConfigError(f"{key}.path: {gguf} is not a GGUF file")
    if options.runtime == "llamacpp":
        if options.no_repeat_ngram_size:
            raise ConfigError(f"{key}.options.no_repeat_ngram_size: the llamacpp runtime has no "
                              "n-gram blocking; set options.runtime: transformers for it")
        return _llamacpp_text(gguf, options, config, settings, key, SMOLLM2_ID)
    return TransformersText(
        gguf.parent, gguf_file=gguf.name, chat_template=options.chat_template,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        device=config.device, dtype=config.dtype, batch_size=config.batch_size,
        weights_cache=weights_cache(settings), max_memory_gib=config.max_memory_gib,
        key=key, json_retries=config.json_retries, default_params=_params(config),
        follows_json=options.follows_json,
        **_common(config, settings, config.model or SMOLLM2_ID),
    )


def llamacpp(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.text_llamacpp import LlamaCppOptions

    key = _key(role)
    options = parse_options(config, LlamaCppOptions, key)
    gguf = require_path(config, key, "a local GGUF file")
    if not gguf.is_file():
        raise ConfigError(f"{key}.path: {gguf} is not a GGUF file")
    return _llamacpp_text(gguf, options, config, settings, key, config.model or gguf.stem)


def _llamacpp_text(gguf: Path, options: Any, config: ModelBackendConfig, settings: Settings,
                   key: str, model_id: str) -> Role:
    """A :class:`LlamaCppText` from a block's options; a clear error without llama-cpp-python."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"{key}: the llama.cpp runtime needs llama-cpp-python ({exc}); install "
                         "it (`pip install llama-cpp-python==0.3.36`, built from source) or set "
                         f"{key}.options.runtime: transformers") from exc
    from tailormind.models.memory import check_fits
    from tailormind.models.text_llamacpp import WEIGHT_EXPANSION, LlamaCppText

    check_fits(gguf, key, max_gib=config.max_memory_gib,
               expansion=WEIGHT_EXPANSION[options.weights])
    return LlamaCppText(
        gguf, weights=options.weights, weights_cache=weights_cache(settings),
        parallel_sequences=options.parallel_sequences, context_tokens=options.context_tokens,
        chat_template=options.chat_template, repetition_penalty=options.repetition_penalty,
        key=key, json_retries=config.json_retries, default_params=_params(config),
        follows_json=options.follows_json, **_common(config, settings, model_id))


def transformers_text(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.text_transformers import TransformersText, TransformersTextOptions

    key = _key(role)
    options = parse_options(config, TransformersTextOptions, key)
    path = require_path(config, key, "a local causal LM directory (config.json, weights, tokenizer)")
    if options.gguf_file and path.is_file():
        path = path.parent
    return TransformersText(
        path, gguf_file=options.gguf_file, chat_template=options.chat_template,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        device=config.device, dtype=config.dtype, batch_size=config.batch_size,
        weights_cache=weights_cache(settings), max_memory_gib=config.max_memory_gib,
        key=key, trust_remote_code=options.trust_remote_code, json_retries=config.json_retries,
        default_params=_params(config), follows_json=options.follows_json,
        **_common(config, settings, config.model or path.name),
    )


def minilm(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.assets import MINILM_ID, minilm_dir
    from tailormind.models.embed_sentence import SentenceTransformersEmbedder

    key = _key(role)
    parse_options(config, NoOptions, key)
    return SentenceTransformersEmbedder(
        Path(config.path) if config.path else minilm_dir(), device=config.device, key=key,
        max_memory_gib=config.max_memory_gib, batch_size=config.batch_size,
        **_common(config, settings, config.model or MINILM_ID),
    )


def sentence_transformers(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.embed_sentence import SentenceTransformersEmbedder

    key = _key(role)
    parse_options(config, NoOptions, key)
    path = require_path(config, key, "a local sentence-transformers model directory")
    return SentenceTransformersEmbedder(
        path, device=config.device, key=key, max_memory_gib=config.max_memory_gib,
        batch_size=config.batch_size, **_common(config, settings, config.model or path.name),
    )


def transformers_describe(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.describe_transformers import TransformersDescriber

    key = _key(role)
    parse_options(config, NoOptions, key)
    path = require_path(config, key, "a local vision-language model directory")
    return TransformersDescriber(
        path, device=config.device, dtype=config.dtype, key=key,
        max_memory_gib=config.max_memory_gib, default_params=_params(config),
        **_common(config, settings, config.model or path.name),
    )


def open_clip(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.clip_openclip import OpenClipOptions, OpenClipScorer

    key = _key(role)
    options = parse_options(config, OpenClipOptions, key)
    weights = require_path(config, key, "the model's local weights file (.bin/.pt/.safetensors)")
    return OpenClipScorer(
        config.model, weights, device=config.device, options=options,
        batch_size=config.batch_size, key=key, max_memory_gib=config.max_memory_gib,
        **_common(config, settings, f"open_clip:{config.model}:{weights.name}"),
    )


def card(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.image_card import CardImage, CardOptions

    options = parse_options(config, CardOptions, _key(role))
    return CardImage(font=options.font, label=options.label,
                     **_common(config, settings, backend_spec(role, config.backend).bundled))


def diffusers_image(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.image_diffusers import DiffusersImage, DiffusersImageOptions

    key = _key(role)
    options = parse_options(config, DiffusersImageOptions, key)
    path = require_path(config, key, "a local diffusers text-to-image pipeline directory")
    return DiffusersImage(path, device=config.device, dtype=config.dtype, options=options, key=key,
                          max_memory_gib=config.max_memory_gib,
                          **_common(config, settings, config.model or path.name))


def slideshow(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.registry import load_role
    from tailormind.models.video_slideshow import SlideshowOptions, SlideshowVideo

    options = parse_options(config, SlideshowOptions, _key(role))
    image = load_role("image", settings)
    model_id = f"slideshow({image.model_id})"
    return SlideshowVideo(image, zoom=options.zoom, crossfade_s=options.crossfade_s,
                          crf=options.crf, **_common(config, settings, model_id))


def diffusers_video(role: str, config: ModelBackendConfig, settings: Settings) -> Role:
    from tailormind.models.video_diffusers import DiffusersVideo, DiffusersVideoOptions

    key = _key(role)
    options = parse_options(config, DiffusersVideoOptions, key)
    path = require_path(config, key, "a local diffusers text-to-video pipeline directory")
    return DiffusersVideo(path, device=config.device, dtype=config.dtype, options=options, key=key,
                          max_memory_gib=config.max_memory_gib,
                          **_common(config, settings, config.model or path.name))
