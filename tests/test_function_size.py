"""Every function in ``tailormind/`` fits on a screen: at most ``LIMIT`` lines, counted from its
``def`` (decorators aside) to its last line, docstring and comments included (issue 20)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tailormind"
LIMIT = 60


def long_functions(root: Path, limit: int = LIMIT) -> list[str]:
    """``path:line name (N lines)`` for every function or method under ``root`` longer than
    ``limit`` lines, longest first."""
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > limit:
                    where = path.relative_to(root.parent)
                    found.append((length, f"{where}:{node.lineno} {node.name} ({length} lines)"))
    return [text for _, text in sorted(found, key=lambda f: (-f[0], f[1]))]


def test_no_function_in_the_package_is_longer_than_the_limit() -> None:
    too_long = long_functions(PACKAGE)
    assert not too_long, (
        f"{len(too_long)} function(s) over {LIMIT} lines; split them into named helpers:\n"
        + "\n".join(too_long)
    )


def test_the_counter_sees_a_function_one_line_over(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    lines = [f"x{i} = {i}\n" for i in range(LIMIT - 1)]
    (package / "sub" / "long.py").write_text(
        "def fits():\n" + "".join("    " + line for line in lines)  # def + 59 lines: 60
        + "\n\nclass C:\n    def too_long(self):\n"
        + "".join("        " + line for line in lines) + "        return 1\n"  # 61 lines
    )
    line = LIMIT + 4  # after fits (60 lines), two blank lines and "class C:"
    assert long_functions(package) == [f"pkg/sub/long.py:{line} too_long ({LIMIT + 1} lines)"]
