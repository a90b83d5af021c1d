"""The one typed settings object, with the paper's values as defaults.

Sources, later ones winning:

1. the defaults below (paper values; where the paper is silent, our choice, marked so and
   explained in ``docs/architecture.md``, "Where the paper is vague: what we chose"),
2. a YAML file (``--config FILE`` or ``TAILORMIND_CONFIG``),
3. environment overrides ``TAILORMIND_<SECTION>__<KEY>=value`` (``__`` separates nesting levels,
   the value is parsed as a YAML scalar, e.g. ``TAILORMIND_CF__TOP_K=20``,
   ``TAILORMIND_MODELS__TEXT__BACKEND=openai``).

An unknown key or a bad value raises :class:`~tailormind.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tailormind.core.backends import ROLE_BACKENDS, ROLES, default_backend
from tailormind.core.vocabulary import (BENCH_METHODS, KINDS, PLATFORMS, BenchMethodName, Kind,
                                        PlatformName)
from tailormind.errors import ConfigError

ENV_PREFIX = "TAILORMIND_"
ENV_NESTING = "__"
#: Environment variables with the prefix that are not config overrides.
ENV_RESERVED = frozenset({"TAILORMIND_CONFIG", "TAILORMIND_WORKSPACE", "TAILORMIND_API_TOKEN",
                          "TAILORMIND_MODELS_API_KEY"})
#: The HTTP API's bearer token, when ``api.token`` is not set in the config.
API_TOKEN_ENV = "TAILORMIND_API_TOKEN"
#: A DNS host name: dot-separated labels of letters, digits and inner hyphens.
_HOST_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SeedsConfig(_Section):
    """Seeds of every random stage; the same seed gives the same output."""

    split: int = 2026
    synthetic: int = 2026
    cf: int = 2026
    profiling: int = 2026
    generation: int = 2026
    bench: int = 2026


class DataConfig(_Section):
    """Split protocol: leave-two-out by timestamp, 1 positive + ``negatives`` per candidate set."""

    negatives: int = Field(99, ge=1, description="Negatives per candidate set (M - 1; paper: 99).")
    min_interactions: int = Field(
        3, ge=3, description="Users with fewer interactions stay train-only (need train+valid+test)."
    )

    @property
    def candidates(self) -> int:
        """M, the size of one candidate set (paper: 100)."""
        return self.negatives + 1


#: CF models ``cf train`` knows; the first is the default.
CF_MODELS = ("hypergraph", "lightgcn")


class CFConfig(_Section):
    """Hypergraph CF (Eq. 5-7) and the LightGCN baseline."""

    model: Literal[CF_MODELS] = CF_MODELS[0]  # type: ignore[valid-type]
    top_k: int = Field(10, ge=1, description="CF(D_u) size; the paper does not state K "
                       "(docs/architecture.md, \"Hypergraph CF\": 10).")
    use_tags: bool = True
    tag_weight: float = Field(1.0, gt=0, description="Weight of tag-item incidences in X' (users: 1).")
    tag_min_items: int = Field(
        2, ge=1, description="Tags on fewer items are dropped: a one-item hyperedge links nothing."
    )
    tag_normalization: Literal["joint", "separate"] = Field(
        "separate",
        description="joint: normalise [X; Yᵀ] as one graph; separate: Â_X + tag_weight·Â_Y "
        "(chosen on validation NDCG@20, ml-latest-small and synthetic).",
    )
    embedding_dim: int = Field(64, ge=1)
    layers: int = Field(3, ge=0)
    batch_size: int = Field(4096, ge=1)
    lr: float = Field(5e-3, gt=0, description="Paper: grid search; 5e-3 measured on ml-latest-small.")
    l2: float = Field(1e-4, ge=0)
    epochs: int = Field(60, ge=1)
    resume_epochs: int | None = Field(
        None, ge=1, description="Epochs of `cf train --resume` (fine-tuning from the last "
        "checkpoint on the grown graph); unset: 20% of `epochs`, rounded up (12 of 60): known "
        "rows start trained, only new rows and their neighbourhood have far to move.")
    early_stop_patience: int = Field(10, ge=1)
    eval_every: int = Field(1, ge=1)
    workers: int = Field(1, ge=1)
    max_graph_gib: float = Field(8.0, gt=0, description="Refuse to build a graph estimated above this.")

    def epochs_to_resume(self) -> int:
        """``resume_epochs``, or ceil(epochs / 5) when unset."""
        return self.resume_epochs if self.resume_epochs is not None else -(-self.epochs // 5)


class ProfilingConfig(_Section):
    """Profile init and textual-gradient refinement (Eq. 8-14)."""

    n_max: int = Field(3, ge=0, description="Refinement iterations N_max (paper: 3).")
    ranker: Literal["embedding", "llm", "hybrid"] = Field(
        "embedding", description="Ranker of the refinement loop (hybrid: CF + profile, fit on valid)."
    )
    rank_top_k: int = Field(
        5, ge=1, description="Top-ranked wrong candidates shown to the critic (paper: unstated; "
        "each costs ~40 prompt tokens per critique)."
    )
    history_items: int = Field(20, ge=1, description="Most recent train items put in the init prompt.")
    reject_worse_updates: bool = Field(
        True, description="Keep the old profile when an update ranks the validation item worse."
    )
    use_cf: bool = Field(True, description="Add CF(D_u) to the init evidence (ablation: false).")
    z_train_items: int = Field(
        0, ge=0, description="Z_u = validation item + this many most recent train items."
    )
    llm_window: int = Field(20, ge=2, description="Candidates per listwise LLM-ranker window.")
    profile_tokens: int = Field(120, ge=16, description="Length of a profile / an update.")
    critique_tokens: int = Field(80, ge=16, description="Length of one critique (the gradient).")
    batch_users: int = Field(32, ge=1, description="Users whose prompts share one LLM step.")
    update_max_positives: int = Field(
        8, ge=1, description="`profile update`: at most this many of a user's newest new "
        "positives are ranked, each against the same 99 fresh negatives (not from the paper, "
        "which profiles once).")
    prompt_item_chars: int = Field(
        150, ge=20, description="Each item description is cut to this in prompts (MovieLens user "
        "tags make some descriptions 2,000+ characters; prompt length is the cost on CPU)."
    )
    passthrough_short_text: bool = Field(
        True, description="Item text up to short_text_chars is its own description (a 135M model "
        "only loses information rewriting it)."
    )
    short_text_chars: int = Field(
        600, ge=0, description="Longer free text (title + text) is summarised; tags are cut to "
        "the most informative (IDF) that fit what is left, at least a quarter of it.")
    tag_lists: Literal["select", "summarise"] = Field(
        "select", description="select: keep the most informative tags that fit, never rewritten; "
        "summarise: summarise tags with the text (the old behaviour, for comparison).")
    item_description_tokens: int = Field(160, ge=8, description="Length of one description.")
    max_images_per_item: int = Field(4, ge=1, description="Images described per item.")
    describe_batch_size: int = Field(256, ge=1, description="Items per resumable part.")
    describe_model_items_per_part: int = Field(
        32, ge=1, description="At most this many items of a part need a model (long free text, "
        "images, a video), so a part is saved every few minutes on a CPU.")
    fusion_recent_items: int = Field(
        10, ge=1, description="Hybrid ranker: the last N train items form the 'recent' content "
        "signal (the paper has no hybrid ranker; its signals were chosen by measurement: "
        "docs/architecture.md, \"Profile fit\")."
    )
    fusion_recent_knn_items: int = Field(
        5, ge=1, description="Hybrid ranker: the last N train items form the 'recent item-kNN' signal."
    )
    fusion_l2: float = Field(1e-3, ge=0, description="L2 penalty of the hybrid weight fit.")


class GenerationConfig(_Section):
    """Retrieval-augmented ideation and cohesion reflection (Eq. 15-18)."""

    reflection_rounds: int = Field(3, ge=0, description="Cohesion reflection rounds (paper: 3).")
    exemplar_top_k: int = Field(3, ge=1, description="Style exemplars; paper does not state k.")
    use_exemplars: bool = Field(
        True, description="Retrieval-augmented style (Eq. 15); false: no exemplars (w/o RAG).")
    use_cf: bool = Field(
        True, description="CF(D_u) items join the exemplar pool; false: history only (w/o CF).")
    platform: PlatformName = Field(
        "rednote", description="Default platform style (a file in tailormind/generation/catalog)."
    )
    idea_subset: int = Field(
        3, ge=1, description="|S|: templates the profile selects, by embedding similarity (the "
        "paper maps p_u to a subset S without saying how; a 135M model cannot choose reliably)."
    )
    max_ideas: int = Field(3, ge=1, description="Ideas asked for per user (at most).")
    idea_tokens: int = Field(256, ge=32, description="Length of the ideation answer (JSON).")
    ugc_chars: int = Field(300, ge=20, description="Each quoted piece of UGC is cut to this.")
    write_tokens: int = Field(400, ge=64, description="Length of one draft (JSON) from the writer.")
    clip_weight: float = Field(
        1.0, ge=0, description="w in the reflection objective J = (R + w·C/2.5)/(1 + w) when a "
        "clip model is configured (the paper gives no weighting; equal by default)."
    )
    answer_format: Literal["auto", "json", "fields"] = Field(
        "auto", description="How ideas and drafts are asked for: one JSON object (json), or one "
        "plain-text field per question with a pre-filled answer start (fields, for small models). "
        "auto: fields when the text model's follows_json is false (the embedded SmolLM2)."
    )
    line_tokens: int = Field(40, ge=8, description="fields: length of a one-line answer (idea, "
                             "title, image prompt, shot, narration).")
    body_tokens: int = Field(96, ge=16, description="fields: length of the body/introduction.")
    link_allowlist: list[str] = Field(
        default_factory=list, description="Hosts a post may link to (http/https; a host covers "
        "its subdomains). A post keeps a link only if it appears verbatim in its source items or "
        "its host is listed here; any other link is removed and recorded among the post's "
        "fallbacks."
    )

    @field_validator("link_allowlist")
    @classmethod
    def _bare_hosts(cls, hosts: list[str]) -> list[str]:
        """Lower-cased host names (``imdb.com``), no scheme, port or path."""
        cleaned = [host.strip().lower().rstrip(".") for host in hosts]
        for host in cleaned:
            if not _HOST_NAME.fullmatch(host):
                raise ValueError(f"{host!r} is not a host name (write e.g. imdb.com, without "
                                 f"scheme or path)")
        return cleaned


class ApiConfig(_Section):
    """The HTTP service (``tailormind/serve/api.py``): auth, input limits and backpressure."""

    token: str | None = Field(
        None, description="Bearer token of every route but health (or $TAILORMIND_API_TOKEN). "
        "Without one the service answers loopback clients only."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies get 413.")
    max_history_items: int = Field(200, ge=1, description="Items in an ad-hoc profile request.")
    max_text_chars: int = Field(4000, ge=1, description="Length of one raw item text or title.")
    max_pending_jobs: int = Field(
        16, ge=1, description="Generation jobs queued or running in the whole service (the job "
        "coordinator counts them); more -> 503."
    )
    max_concurrent_profiles: int = Field(
        4, ge=1, description="Ad-hoc profile requests in flight per ingress replica; more -> 503."
    )
    worker_concurrency: int = Field(
        1, ge=1, description="Profiles or jobs one worker replica runs at once. Keep 1 with "
        "in-process models; with backend serve/openai their model calls overlap and batch."
    )
    retry_after_s: int = Field(10, ge=1, description="Retry-After of a 503 sent under load.")
    request_timeout_s: float = Field(
        300.0, gt=0, description="An ad-hoc profile request running longer is cancelled (504)."
    )
    job_timeout_s: float = Field(
        1800.0, gt=0, description="A generation job running longer is cancelled and failed."
    )
    lease_s: float = Field(
        30.0, gt=0, description="A worker renews its claim on a job this often (a third of it); "
        "a claim not renewed for this long is lost (worker or node died) and the job re-queued."
    )
    max_attempts: int = Field(
        3, ge=1, description="Claims a job may take; a job whose last lease is lost is failed."
    )
    max_queued_s: float = Field(
        1800.0, gt=0, description="A job not claimed by a worker within this long is failed."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Hosts (besides loopback) a no-token server answers "
        "for in the Host header; with a token any Host is accepted."
    )
    platforms: list[PlatformName] = Field(
        default_factory=lambda: list(PLATFORMS),
        description="Platforms a post request may ask for.",
    )
    kinds: list[Kind] = Field(
        default_factory=lambda: list(KINDS), description="Kinds a post request may ask for."
    )

    def resolved_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``api.token``, else ``$TAILORMIND_API_TOKEN``; empty means none."""
        environ = os.environ if environ is None else environ
        return self.token or environ.get(API_TOKEN_ENV) or None


#: Role settings that never change a model's output (left out of ``Settings.config_hash``).
OUTPUT_NEUTRAL = ("timeout_s", "max_retries", "concurrency", "batch_size", "max_memory_gib")

class ModelBackendConfig(_Section):
    """One model role's backend. ``path`` is a local directory or file; nothing is downloaded."""

    backend: str
    model: str | None = None
    path: Path | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0, description="HTTP retries (backoff 0.5 s, doubling).")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once (HTTP backends).")
    batch_size: int = Field(16, ge=1, description="Inputs per forward pass / request.")
    max_tokens: int = Field(512, ge=1, description="Default completion length (text, describe).")
    temperature: float = Field(0.0, ge=0, description="Default sampling temperature; 0 = greedy.")
    json_retries: int = Field(
        2, ge=0, description="Re-asks after an answer that is not valid JSON, then a counted failure."
    )
    max_memory_gib: float | None = Field(
        None, gt=0, description="Refuse weights larger than this; default: the memory available."
    )
    app: str = Field("tailormind-models", description="Serve backend: the Serve application name.")
    deployment: str | None = Field(
        None, description="Serve backend: deployment name (default: the role's deployment)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Backend-specific options, validated by the backend."
    )


def _role(role: str) -> Any:
    """The role's block, defaulting to its default backend (tailormind/core/backends.py)."""
    return Field(default_factory=lambda: ModelBackendConfig(backend=default_backend(role)))


class ModelsConfig(_Section):
    """One backend block per role; the defaults are the embedded CPU models."""

    cache: bool = Field(True, description="Cache every model call on disk (keyed by inputs+params).")
    cache_dir: Path | None = Field(
        None, description="Default: $XDG_CACHE_HOME/tailormind (~/.cache/tailormind)."
    )
    text: ModelBackendConfig = _role("text")
    embed: ModelBackendConfig = _role("embed")
    describe: ModelBackendConfig = _role("describe")
    clip: ModelBackendConfig = _role("clip")
    image: ModelBackendConfig = _role("image")
    video: ModelBackendConfig = _role("video")

    @model_validator(mode="before")
    @classmethod
    def _default_backends(cls, data: Any) -> Any:
        """A role block without ``backend`` keeps the role's default backend, so
        ``models: {text: {max_tokens: 256}}`` tunes SmolLM2 instead of failing."""
        if isinstance(data, dict):
            data = dict(data)
            for role in ROLES:
                block = data.get(role)
                if isinstance(block, dict) and "backend" not in block:
                    data[role] = {**block, "backend": default_backend(role)}
        return data

    @model_validator(mode="after")
    def _known_backends(self) -> ModelsConfig:
        for role, allowed in ROLE_BACKENDS.items():
            backend = getattr(self, role).backend
            if backend not in allowed:
                raise ValueError(
                    f"models.{role}.backend: unknown backend {backend!r}; "
                    f"choose one of {', '.join(allowed)}"
                )
        return self


class BenchConfig(_Section):
    """TailorBench (``docs/architecture.md``, "TailorBench"): users, methods, judge, intervals."""

    users: int = Field(20, ge=1, description="Users scored (a seeded sample; profiled users first).")
    methods: list[BenchMethodName] = Field(
        default_factory=lambda: list(BENCH_METHODS),
        description="Methods scored on the same users, seeds and judge.")
    kind: Kind = Field("post", description="What each method generates.")
    judge: ModelBackendConfig | None = Field(
        None, description="The judge's text backend (any text backend: an OpenAI-compatible "
        "server in production); null: the models.text role judges.")
    vision_judge: bool = Field(
        True, description="Score image aesthetics with the describe role when one is configured.")
    judge_history_items: int = Field(
        8, ge=1, description="Most recent history items shown to the judge (novelty, sources).")
    bootstrap_resamples: int = Field(1000, ge=100, description="B of the percentile bootstrap.")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="Interval coverage (95%).")
    example_posts: int = Field(3, ge=0, description="Example users shown side by side in the report.")
    calibration_pairs: int = Field(
        100, ge=10, description="Judge calibration: pairs per dimension whose better member is "
        "known (built from the workspace's posts and catalogue; `bench calibrate`).")
    cost_tokens_per_gpu_second: float = Field(
        1000.0, gt=0, description="Cost study (RQ5): the LLM throughput, prompt + completion "
        "tokens per GPU-second, behind the report's GPU-seconds *estimate* (tokens ÷ this). An "
        "assumption, not a measurement — set it from your own serving benchmark.")


class Settings(_Section):
    """Effective configuration of every stage."""

    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    cf: CFConfig = Field(default_factory=CFConfig)
    profiling: ProfilingConfig = Field(default_factory=ProfilingConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.public_dump(), sort_keys=False)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with the nested ``overrides`` merged in (validated like a config file)."""
        return Settings.model_validate(_merge(self.model_dump(mode="json"), overrides))

    def public_dump(self) -> dict[str, Any]:
        """The settings as JSON data with secrets masked (``api.token``)."""
        data = self.model_dump(mode="json")
        if data["api"].get("token"):
            data["api"]["token"] = "***"
        return data

    def config_hash(self, *sections: str) -> str:
        """12 hex digits of sha256 over the named sections (all when none): provenance of outputs.

        Settings that change how a result is computed but not what it is (the call cache, HTTP
        timeouts and retries, batch size, memory cap, ``OUTPUT_NEUTRAL``) are left out, so turning
        the cache off does not make a job redo finished work."""
        import hashlib
        import json

        data = self.model_dump(mode="json")
        data.pop("api", None)  # the HTTP service's knobs never change what a stage computes
        models = data.get("models", {})
        for key in ("cache", "cache_dir"):
            models.pop(key, None)
        for block in models.values():
            for key in OUTPUT_NEUTRAL:
                block.pop(key, None)
        chosen = {name: data[name] for name in (sections or tuple(data))}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]


def yaml_error_line(exc: yaml.YAMLError) -> str:
    """A one-line description of a YAML parse error (problem and line:column)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``TAILORMIND_A__B=v`` -> ``{"a": {"b": yaml(v)}}``."""
    tree: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split(ENV_NESTING)]
        if not all(parts):
            raise ConfigError(f"environment variable {name}: empty key segment")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"environment variable {name}: not a YAML value ({yaml_error_line(exc)})"
            ) from None
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return tree


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            shown = err.get("input")
            got = f" (got {shown!r})" if not isinstance(shown, dict) else ""
            lines.append(f"config key '{key}': {msg}{got}")
    return "; ".join(lines)


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults <- YAML ``path`` (or ``$TAILORMIND_CONFIG``) <- ``overrides`` (a nested mapping,
    e.g. a Serve config's inline ``models:`` block) <- ``TAILORMIND_*`` environment overrides."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get("TAILORMIND_CONFIG"):
        path = environ["TAILORMIND_CONFIG"]
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({yaml_error_line(exc)})") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path}: not UTF-8 text ({exc.reason})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping of sections")
        data = loaded
    if overrides:
        data = _merge(data, overrides)
    data = _merge(data, _env_overrides(environ))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        source = f"config file {path}" if path is not None else "config"
        raise ConfigError(f"{source}: {_describe_validation_error(exc)}") from None
