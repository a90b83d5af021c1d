"""Each closed vocabulary is written once, in ``tailormind/core/vocabulary.py``: no other module
spells out the manifest's name or the list of platforms, kinds or bench methods."""

from __future__ import annotations

import ast
from pathlib import Path

from tailormind.bench.methods import METHODS
from tailormind.core.vocabulary import BENCH_METHODS, KINDS, MANIFEST, PLATFORMS
from tailormind.generation.catalog import packaged_catalog

PACKAGE = Path(__file__).resolve().parents[1] / "tailormind"
HOME = PACKAGE / "core" / "vocabulary.py"


def spelled_out(path: Path) -> list[str]:
    """Where ``path`` writes the manifest name or a whole vocabulary as a literal sequence."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and node.value == MANIFEST:
            found.append(f"{path.name}:{node.lineno} {MANIFEST!r}")
        elif isinstance(node, (ast.Tuple, ast.List)) and all(
                isinstance(e, ast.Constant) for e in node.elts):
            values = {e.value for e in node.elts}
            for name, vocabulary in (("PLATFORMS", PLATFORMS), ("KINDS", KINDS),
                                     ("BENCH_METHODS", BENCH_METHODS)):
                if len(values) > 1 and values == set(vocabulary):
                    found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_no_module_spells_out_a_vocabulary() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) if path != HOME
             for hit in spelled_out(path)]
    assert found == []


def test_the_check_finds_a_copy(tmp_path: Path) -> None:
    copy = tmp_path / "copy.py"
    copy.write_text('KINDS = ["video", "post"]\nM = "workspace.json"\n')
    assert spelled_out(copy) == ["copy.py:1 KINDS", "copy.py:2 'workspace.json'"]


def test_the_catalogue_and_the_bench_cover_their_vocabulary_in_order() -> None:
    assert list(packaged_catalog().platforms) == sorted(PLATFORMS)  # one style file each
    assert tuple(METHODS) == BENCH_METHODS  # report order
