"""The registry and the ``tailormind models`` commands: config in, role out, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailormind.config import load_config
from tailormind.errors import ConfigError, ModelNotConfiguredError
from tailormind.models.registry import ROLES, load_role, role_status


def test_status_without_loading() -> None:
    rows = {r.role: r for r in role_status(load_config(environ={}))}
    assert list(rows) == list(ROLES)
    assert rows["text"].backend == "smollm2" and "SmolLM2-135M-Instruct" in rows["text"].model
    assert not rows["describe"].configured and "no vision-language weights" in rows["describe"].note
    assert "not a generated picture" in rows["image"].note


def test_unconfigured_describe_names_the_key_and_the_choices() -> None:
    with pytest.raises(ModelNotConfiguredError,
                       match=r"models\.describe: not configured .* transformers .* openai"):
        load_role("describe", load_config(environ={}))


def test_unknown_role_and_backend() -> None:
    with pytest.raises(ConfigError, match="unknown model role 'sound'"):
        load_role("sound", load_config(environ={}))
    with pytest.raises(ConfigError, match=r"models\.image\.backend: unknown backend 'dalle'"):
        load_config(environ={"TAILORMIND_MODELS__IMAGE__BACKEND": "dalle"})


def test_card_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"models\.image\.options\.fonts: Extra inputs .*"
                                          r"options of backend 'card': font, label"):
        load_role("image", load_config(environ={}, overrides={"models": {
            "cache_dir": str(tmp_path), "image": {"options": {"fonts": "x"}}}}))


def test_roles_load_once_per_config(tmp_path: Path) -> None:
    settings = load_config(environ={}, overrides={"models": {"cache_dir": str(tmp_path)}})
    image = load_role("image", settings)
    assert load_role("image", settings) is image
    assert load_role("video", settings).image_role is image  # the slideshow shares it
    other = load_config(environ={}, overrides={"models": {"cache_dir": str(tmp_path),
                                                          "image": {"options": {"label": False}}}})
    assert load_role("image", other) is not image


def test_cli_models_list_and_check(cli, tmp_path: Path, monkeypatch) -> None:
    result = cli("models", "list", "--json")
    assert result.code == 0
    listed = {row["role"]: row for row in json.loads(result.out)}
    assert listed["clip"]["configured"] is False and listed["video"]["backend"] == "slideshow"
    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(tmp_path))
    result = cli("models", "check", "--role", "image", "--role", "video", "--role", "clip",
                 "--json")
    assert result.code == 0, result.err
    checked = {row["role"]: row for row in json.loads(result.out)}
    assert checked["image"]["status"] == "ok" and "card 256x256" in checked["image"]["detail"]
    assert checked["video"]["status"] == "ok" and "8 frames" in checked["video"]["detail"]
    assert checked["clip"]["status"] == "not configured"
    result = cli("models", "cache")
    assert result.code == 0 and "cached calls" in result.out


def test_cli_models_check_fails_on_a_broken_role(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TAILORMIND_MODELS__TEXT__BACKEND", "transformers")
    monkeypatch.setenv("TAILORMIND_MODELS__TEXT__PATH", str(tmp_path / "no-model"))
    result = cli("models", "check", "--role", "text")
    assert result.code == 1
    assert "failed" in result.out and "does not exist" in result.out
    assert cli("models", "check", "--role", "sound").code == 2


def test_a_partial_role_block_keeps_the_default_backend() -> None:
    settings = load_config(environ={}, overrides={"models": {"text": {"max_tokens": 256}}})
    assert settings.models.text.backend == "smollm2" and settings.models.text.max_tokens == 256
    env = load_config(environ={"TAILORMIND_MODELS__EMBED__BATCH_SIZE": "64"})
    assert env.models.embed.backend == "minilm" and env.models.embed.batch_size == 64
