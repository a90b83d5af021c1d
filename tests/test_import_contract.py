"""The layer order, checked on every import statement in the package (lazy ones included).

A module may import from its own layer or any layer below it, never from one above::

    core, errors  ←  config, progress, prompts  ←  data  ←  models  ←  cf  ←  profiling
      ←  generation  ←  bench  ←  serve, pipeline, job_entry  ←  cli, __main__

``docs/architecture.md`` explains each layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tailormind"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("core", "errors"),
    ("config", "progress", "prompts"),
    ("data",),
    ("models",),
    ("cf",),
    ("profiling",),
    ("generation",),
    ("bench",),
    ("serve", "pipeline", "job_entry"),
    ("cli", "__main__"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


def layer_of(module: str) -> int | None:
    """The layer of ``tailormind.<top>...``; None for modules outside the package."""
    parts = module.split(".")
    if parts[0] != "tailormind":
        return None
    if len(parts) == 1:
        return 0  # the package's own __init__ exports nothing but the version
    return LAYER_OF[parts[1]]


def package_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import of a tailormind module in ``path``."""
    module = "tailormind." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
    return [(line, target) for line, target in out if target.split(".")[0] == "tailormind"]


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        own = LAYER_OF[relative.parts[0].removesuffix(".py")] if relative.parts[0] != "__init__.py" \
            else 0
        for line, target in package_imports(path):
            if (level := layer_of(target)) is not None and level > own:
                found.append(f"tailormind/{relative.as_posix()}:{line} imports {target} "
                             f"(layer {level} > {own})")
    return found


def test_every_top_level_module_has_a_layer() -> None:
    tops = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
            if (p.suffix == ".py" or any(p.glob("*.py"))) and p.name != "__init__.py"}
    assert tops == set(LAYER_OF), f"place these in LAYERS: {sorted(tops ^ set(LAYER_OF))}"


def test_no_module_imports_from_a_layer_above_it() -> None:
    assert violations() == []


def test_core_imports_nothing_else_from_the_package() -> None:
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for line, target in package_imports(path):
            assert target.startswith(("tailormind.core", "tailormind.errors")), \
                f"{path.name}:{line} imports {target}"


def test_the_check_sees_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "tailormind"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "x.py").write_text("def f():\n    from tailormind.bench import metrics\n")
    (fake / "data" / "y.py").write_text("from ..cli import main\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    assert violations() == [
        "tailormind/data/x.py:2 imports tailormind.bench (layer 7 > 2)",
        "tailormind/data/y.py:1 imports tailormind.cli (layer 9 > 2)",
    ]
