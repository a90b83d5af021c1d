"""Test modules do not import each other: what several share (fixtures, fakes, helpers) lives in
conftest.py or a helper module (fakes.py, workspaces.py, ...), so a module's fixtures are not
rebuilt for every module that imports it, and running one test file runs only that file."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    """``test_x``, ``tests.test_x`` (or, relative to tests/, ``.test_x``)."""
    *package, name = dotted.split(".")
    return name.startswith("test_") and package in ([], ["tests"])


def imported_test_modules(path: Path) -> list[str]:
    """The test modules ``path`` imports, in any form (``import tests.test_x``, ``from
    test_x import y``, ``from .test_x import y``, ``from tests import test_x``, ...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if _is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            dots, module = "." * node.level, node.module or ""
            if module and _is_test_module(module):
                found.append(dots + module)
            elif module in ("", "tests"):
                found += [f"{dots}{module}{'.' if module else ''}{a.name}" for a in node.names
                          if _is_test_module(a.name)]
    return found


def test_no_module_of_tests_imports_a_test_module() -> None:
    offenders = {path.name: imported_test_modules(path) for path in sorted(TESTS.glob("*.py"))}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    module = tmp_path / "test_example.py"
    module.write_text("import tests.test_a\nimport test_b\nfrom tests.test_c import x\n"
                      "from test_d import y\nfrom .test_e import z\nfrom tests import test_f\n"
                      "from . import test_g\nfrom tests.conftest import fresh\n"
                      "from tests.fakes import ScriptedText\nimport testing_tools\n")
    assert imported_test_modules(module) == ["tests.test_a", "test_b", "tests.test_c", "test_d",
                                             ".test_e", "tests.test_f", ".test_g"]
