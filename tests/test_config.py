"""Config: paper defaults, YAML + environment overrides, and errors that name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailormind.config import Settings, load_config
from tailormind.errors import ConfigError


def test_defaults_are_the_papers_values() -> None:
    s = load_config(None, environ={})
    assert s.data.negatives == 99 and s.data.candidates == 100  # M = 1 + 99
    assert s.profiling.n_max == 3
    assert s.generation.reflection_rounds == 3
    assert s.seeds.split == 2026
    assert {r: getattr(s.models, r).backend for r in ("text", "embed", "describe", "clip", "image", "video")} == {
        "text": "smollm2", "embed": "minilm", "describe": "none", "clip": "none",
        "image": "card", "video": "slideshow",
    }


def test_the_catalogue_offers_the_papers_r_idea_templates_and_config_has_no_dead_knob() -> None:
    from tailormind.generation.catalog import packaged_catalog

    assert len(packaged_catalog().ideas) == 10  # R (paper: 10); the catalogue file is the knob
    for section, key in (("generation", "idea_templates"), ("generation", "top_preferences"),
                         ("profiling", "eval_users")):
        with pytest.raises(ConfigError, match=key):
            load_config(None, environ={}, overrides={section: {key: 1}})


def test_yaml_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cf:\n  top_k: 20\n  lr: 0.01\nmodels:\n  text:\n    backend: openai\n    base_url: http://127.0.0.1:8000/v1\n")
    s = load_config(path, environ={"TAILORMIND_CF__TOP_K": "50", "TAILORMIND_PROFILING__N_MAX": "5"})
    assert s.cf.top_k == 50  # environment wins over the file
    assert s.cf.lr == 0.01  # file wins over the default
    assert s.profiling.n_max == 5
    assert s.models.text.backend == "openai"
    assert s.models.text.base_url == "http://127.0.0.1:8000/v1"
    assert s.models.embed.backend == "minilm"  # untouched sections keep defaults


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seeds:\n  split: 7\n")
    assert load_config(None, environ={"TAILORMIND_CONFIG": str(path)}).seeds.split == 7


@pytest.mark.parametrize(
    ("yaml_text", "env", "needle"),
    [
        ("cf:\n  topk: 3\n", {}, "unknown config key 'cf.topk'"),
        ("nonsense: 1\n", {}, "unknown config key 'nonsense'"),
        ("cf:\n  top_k: -1\n", {}, "config key 'cf.top_k'"),
        ("cf:\n  model: word2vec\n", {}, "config key 'cf.model'"),
        ("", {"TAILORMIND_DATA__NEGATIVES": "many"}, "config key 'data.negatives'"),
        ("", {"TAILORMIND_CF__NOPE": "1"}, "unknown config key 'cf.nope'"),
        ("models:\n  image:\n    backend: dalle\n", {}, "models.image.backend: unknown backend 'dalle'"),
        ("- a\n- b\n", {}, "top level must be a mapping"),
        ("cf: [\n", {}, "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, yaml_text: str, env: dict[str, str], needle: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_yaml_dump_round_trips() -> None:
    s = load_config(None, environ={"TAILORMIND_CF__TOP_K": "17"})
    import yaml

    assert Settings.model_validate(yaml.safe_load(s.to_yaml())) == s


def test_config_show_prints_effective_config(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("cf:\n  top_k: 33\n")
    monkeypatch.setenv("TAILORMIND_PROFILING__N_MAX", "4")
    result = cli("--config", path, "config", "show", "--json")
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["cf"]["top_k"] == 33 and shown["profiling"]["n_max"] == 4
    assert shown["data"]["negatives"] == 99


def test_config_show_rejects_bad_key_without_traceback(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("generation:\n  rounds: 2\n")
    result = cli("--config", path, "config", "show")
    assert result.code == 2
    assert "unknown config key 'generation.rounds'" in result.err
    assert "Traceback" not in result.err


def test_config_hash_ignores_how_results_are_computed_not_what_they_are() -> None:
    base = load_config(environ={})
    operational = load_config(
        environ={"TAILORMIND_MODELS__CACHE": "false"},
        overrides={"models": {"text": {"batch_size": 3, "timeout_s": 5, "max_retries": 0,
                                       "concurrency": 1, "max_memory_gib": 2}}})
    assert operational.config_hash("models") == base.config_hash("models")
    sampled = load_config(environ={}, overrides={"models": {"text": {"temperature": 0.7}}})
    assert sampled.config_hash("models") != base.config_hash("models")
    assert sampled.config_hash("seeds") == base.config_hash("seeds")


def test_api_token_comes_from_the_environment_and_is_never_shown(cli, tmp_path: Path,
                                                                  monkeypatch) -> None:
    env = {"TAILORMIND_API_TOKEN": "from-env", "TAILORMIND_MODELS_API_KEY": "k",
           "TAILORMIND_API__MAX_PENDING_JOBS": "3"}
    s = load_config(None, environ=env)  # the two secrets are not config overrides
    assert s.api.token is None and s.api.resolved_token(env) == "from-env"
    assert s.api.max_pending_jobs == 3 and s.api.resolved_token({}) is None
    assert load_config(None, environ={"TAILORMIND_API__TOKEN": "t"}).api.resolved_token({}) == "t"
    with pytest.raises(ConfigError, match="api.max_pending_jobs"):
        load_config(None, environ={"TAILORMIND_API__MAX_PENDING_JOBS": "0"})
    # the token changes no result, so no stage's config hash
    assert load_config(None, environ={"TAILORMIND_API__TOKEN": "t"}).config_hash() == \
        load_config(None, environ={}).config_hash()
    path = tmp_path / "c.yaml"
    path.write_text("api: {token: s3cret-value}\n")
    shown = cli("--config", path, "config", "show")
    as_json = cli("--config", path, "config", "show", "--json")
    assert shown.code == as_json.code == 0
    assert "s3cret-value" not in shown.out + as_json.out
    assert json.loads(as_json.out)["api"]["token"] == "***"
