"""Ray Serve LLM's OpenAI app (vLLM) with :class:`ModelKeyGuard` in front of its routes.

``ray.serve.llm:build_openai_app`` answers ``/v1/*`` with no authentication. This builder makes
the same app (the same LLM deployments, model cards and ingress class) on a FastAPI app whose
first middleware checks the key: ``$TAILORMIND_LLM_API_KEY`` (``args.api_key_env``), else
``$TAILORMIND_MODELS_API_KEY``, else ``$TAILORMIND_API_TOKEN``; with none, loopback only.

Args: Ray Serve LLM's ``LLMServingArgs`` (``llm_configs``, ``ingress_deployment_config``...) plus
``api_key_env``. Ray Serve LLM's "direct streaming" mode (no separate ingress) is refused: it
would leave no place for the guard.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from tailormind.errors import ConfigError
from tailormind.serve.model_key_guard import DEFAULT_KEY_ENVS, ModelKeyGuard

LLM_KEY_ENV = "TAILORMIND_LLM_API_KEY"


def key_envs(args: dict[str, Any]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([args.get("api_key_env") or LLM_KEY_ENV, *DEFAULT_KEY_ENVS]))


def serving_args(args: dict[str, Any]) -> dict[str, Any]:
    """The args Ray Serve LLM's ``LLMServingArgs`` takes (``api_key_env`` removed)."""
    return {k: v for k, v in args.items() if k != "api_key_env"}


def build_app(args: dict[str, Any]) -> Application:
    from ray import serve
    from ray.llm._internal.serve.constants import RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING
    from ray.llm._internal.serve.core.configs.openai_api_models import to_model_metadata
    from ray.llm._internal.serve.core.ingress import builder
    from ray.llm._internal.serve.core.ingress.ingress import init, make_fastapi_ingress

    if RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING:
        raise ConfigError("RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING has no ingress to guard; unset "
                          "it to serve the LLM app behind an API key")
    parsed = builder.LLMServingArgs.model_validate(serving_args(args))
    configs = parsed.llm_configs
    deployments = {c.model_id: builder.build_llm_deployment(c) for c in configs}
    cards = {c.model_id: to_model_metadata(c.model_id, c) for c in configs}
    lora_paths = {c.model_id: c.lora_config.dynamic_lora_loading_path
                  for c in configs if c.lora_config is not None}
    ingress = parsed.ingress_cls_config
    options = builder.maybe_apply_llm_deployment_config_defaults(
        ingress.ingress_cls.get_deployment_options(configs), parsed.ingress_deployment_config)
    app = init()
    app.add_middleware(ModelKeyGuard, key_envs=key_envs(args))  # added last: runs first
    ingress_cls = make_fastapi_ingress(ingress.ingress_cls, app=app)
    return serve.deployment(ingress_cls, **options).bind(
        llm_deployments=deployments, model_cards=cards, lora_paths=lora_paths,
        **ingress.ingress_extra_kwargs)
