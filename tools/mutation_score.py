"""Mutation score per module from a finished ``mutmut run`` (``make mutation``).

score = detected / (mutants − equivalent), where *detected* is killed, timed out or crashed, and
the equivalent mutants are the ones listed, each with its reason, in
``tests/mutation_equivalent.toml`` (``"mutant name" = "why it cannot change behaviour"``). A
mutant that survives, or that no selected test executes ("no tests"), counts against the module.

Prints one row per module of ``[tool.mutmut] only_mutate`` (with the raw score, detected / all
mutants, and how many of the detected timed out) and the undetected mutants that are not listed;
exits 1 when a module is under ``--target`` (85% by default) or a listed mutant no longer exists
or is now detected (the list must stay true).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
UNDETECTED = {"survived", "no tests"}


def status_of(exit_code: int | None) -> str:
    """mutmut's own mapping from a mutant's test exit code to its status."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[exit_code]


def module_results(root: Path, module_path: str) -> dict[str, str]:
    """mutant name -> status for one source file, from mutmut's ``.meta`` file."""
    meta = root / "mutants" / (module_path + ".meta")
    if not meta.exists():
        raise SystemExit(f"error: {meta} not found: run `make mutation` (mutmut run) first")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_of(code) for name, code in codes.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--target", type=float, default=0.85)
    args = parser.parse_args(argv)
    config = tomllib.loads((args.root / "pyproject.toml").read_text())["tool"]["mutmut"]
    equivalent = tomllib.loads((args.root / "tests" / "mutation_equivalent.toml").read_text())
    problems: list[str] = []
    rows = []
    for module_path in config["only_mutate"]:
        results = module_results(args.root, module_path)
        listed = {name for name in equivalent if name in results}
        counts = {s: 0 for s in ("detected", "undetected", "equivalent", "other", "timeout")}
        for name, status in sorted(results.items()):
            if name in listed:
                counts["equivalent"] += 1
                if status in DETECTED:
                    problems.append(f"{name} is listed as equivalent but a test detects it")
            elif status in DETECTED:
                counts["detected"] += 1
                counts["timeout"] += status == "timeout"
            elif status in UNDETECTED:
                counts["undetected"] += 1
                problems.append(f"{name}: {status}")
            else:
                counts["other"] += 1
                problems.append(f"{name}: {status} (run it again)")
        scored = len(results) - counts["equivalent"]
        score = counts["detected"] / scored if scored else 1.0
        rows.append((module_path, len(results), counts, score))
    known = {name for path in config["only_mutate"] for name in module_results(args.root, path)}
    problems += [f"{name} is listed as equivalent but no such mutant exists"
                 for name in equivalent if name not in known]
    print(f"{'module':<40} {'mutants':>7} {'killed':>7} {'(timeout)':>9} {'equiv.':>7} {'left':>5} "
          f"{'raw':>7} {'score':>7}")
    for path, total, c, score in rows:
        raw = c["detected"] / total if total else 1.0  # detected / all, no list applied
        print(f"{path:<40} {total:>7} {c['detected']:>7} {c['timeout']:>9} {c['equivalent']:>7} "
              f"{c['undetected'] + c['other']:>5} {raw:>7.1%} {score:>7.1%}")
    for line in problems:
        print(f"  {line}")
    failing = [path for path, _, _, score in rows if score < args.target]
    if failing:
        print(f"under the {args.target:.0%} target: {', '.join(failing)}")
    return 1 if failing or any("listed as equivalent" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
