"""``tools/mutation_score.py`` (``make mutation``'s table) on hand-made mutmut results."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutation_score.py"


def project(tmp_path: Path, results: dict[str, dict[str, int | None]], equivalent: str) -> Path:
    """A root with ``[tool.mutmut] only_mutate``, mutmut's ``.meta`` files and the list."""
    (tmp_path / "tests").mkdir()
    modules = ", ".join(f'"{m}"' for m in results)
    (tmp_path / "pyproject.toml").write_text(f"[tool.mutmut]\nonly_mutate = [{modules}]\n")
    (tmp_path / "tests" / "mutation_equivalent.toml").write_text(equivalent)
    for module, codes in results.items():
        meta = tmp_path / "mutants" / (module + ".meta")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"exit_code_by_key": codes}))
    return tmp_path


def run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    main = runpy.run_path(str(TOOL))["main"]
    code = main(["--root", str(root), *args])
    return code, capsys.readouterr().out.splitlines()


def test_score_leaves_out_the_listed_equivalents(tmp_path: Path, capsys) -> None:
    # 10 mutants of a.py: 7 killed (exit 1), 1 timed out (-24), 2 survived (0), one listed
    codes = {f"a.x_f__mutmut_{i}": 1 for i in range(1, 8)}
    codes |= {"a.x_f__mutmut_8": -24, "a.x_f__mutmut_9": 0, "a.x_f__mutmut_10": 0}
    root = project(tmp_path, {"pkg/a.py": codes}, '"a.x_f__mutmut_9" = "same output"\n')
    code, lines = run(root, capsys)
    # detected 8 of 10 (raw 80.0%); score 8 / (10 - 1) = 88.9%; one left
    assert lines[1].split() == ["pkg/a.py", "10", "8", "1", "1", "1", "80.0%", "88.9%"]
    assert lines[2].strip() == "a.x_f__mutmut_10: survived"
    assert code == 0
    code, lines = run(root, capsys, "--target", "0.9")
    assert code == 1 and lines[-1] == "under the 90% target: pkg/a.py"


def test_a_listed_mutant_that_is_killed_or_gone_fails_the_run(tmp_path: Path, capsys) -> None:
    root = project(tmp_path, {"pkg/a.py": {"a.x_f__mutmut_1": 1, "a.x_f__mutmut_2": 0}},
                   '"a.x_f__mutmut_1" = "wrong"\n"a.x_f__mutmut_2" = "ok"\n"a.x_g__mutmut_1" = "gone"\n')
    code, lines = run(root, capsys)
    assert code == 1
    assert "  a.x_f__mutmut_1 is listed as equivalent but a test detects it" in lines
    assert "  a.x_g__mutmut_1 is listed as equivalent but no such mutant exists" in lines


def test_without_a_run_it_says_what_to_do(tmp_path: Path) -> None:
    root = project(tmp_path, {}, "")
    (root / "pyproject.toml").write_text('[tool.mutmut]\nonly_mutate = ["pkg/b.py"]\n')
    with pytest.raises(SystemExit, match=r"mutants/pkg/b.py.meta not found: run `make mutation`"):
        runpy.run_path(str(TOOL))["main"](["--root", str(root)])
