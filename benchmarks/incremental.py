"""Replay benchmark: incremental updates against full recomputation on ml-latest-small.

    python benchmarks/incremental.py [--workdir DIR] [--increments 4] [--base 0.8]
                                     [--profile-users 20] [--epochs N] [--json FILE]
                                     [--users N]   # the first N user ids only: a smoke run

The ratings (and the users' tag events) are replayed in time order. The first ``--base`` of
them, and every movie first rated or tagged there, make the base workspace; the rest arrive in
``--increments`` equal appends, each with the movies it names for the first time (new items)
and its new users. **Fixed test sets**: for every user whose two latest ratings both lie after
the cut, those two ratings are moved into the base, so the split makes them that user's
validation and test positives; everything else the user rated after the cut arrives through the
appends and becomes train history on both paths. These users' test items lie after every
increment, both paths see the same history, and the appends never move their candidate sets.

After each append (the same one to two copies of the workspace) each path catches up:

- **incremental**: ``data append``, ``profile describe`` (new items only), ``cf train --resume``
  (``cf.resume_epochs``), ``cf recommend --users-changed``, ``profile update``;
- **full**: what a new interaction meant before: ``data import`` + ``data split`` of all the data
  so far (timed in a scratch workspace; its split would draw other candidate sets, so the models
  are then trained on the appended copy, whose sets are the incremental path's), ``profile
  describe``, ``cf train`` from scratch, ``cf recommend`` for everyone, ``profile run --force``
  on the same seeded sample of ``--profile-users``.

Each stage runs as its own ``tailormind`` process (start-up included, as an operator sees it).
Quality, per increment: HypergraphCF Recall/NDCG@10/20 on the fixed test sets, incremental −
full per user with a 95% paired-bootstrap interval (B, seed from config ``bench``); the same for
the profiles alone (embedding ranker) on the profiled sample — SmolLM2-135M's profiles rank near
popularity, so that row checks that the update does not lose what the full run has, not the
method's quality. Cost: wall seconds and LLM tokens of each path; the target is each incremental
step ≤ 20% of the full one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SOURCE = REPO / "data" / "ml-latest-small"
CF_MODEL = "hypergraph"
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
#: HypergraphCF on the users whose test items lie after every increment, and on every user with
#: a test set (the same, fixed, sets on both paths); the refined profiles on the profiled sample
QUALITY_ROWS = ("cf", "cf (all users)", "profiles")


# ---------------------------------------------------------------- the replay files


@dataclass
class Replay:
    base: Path  # a MovieLens directory: the base ratings, tags and movies
    increments: list[Path]  # one MovieLens directory per append (movies.csv: its new movies)
    cumulative: list[Path]  # the base plus increments 1..i, for the full path's re-import
    fixed_users: list[str]  # users whose validation and test ratings were moved into the base
    counts: list[dict[str, int]] = field(default_factory=list)


def _windows(ratings: pd.DataFrame, base: float, increments: int) -> tuple[np.ndarray, list[str]]:
    """Each rating's window (0 = base, 1..n = increments) after moving the fixed users' two
    latest ratings into the base; the fixed users."""
    order = ratings.sort_values(["timestamp", "userId", "movieId"], kind="stable").index
    cut = int(len(order) * base)
    window = np.zeros(len(ratings), dtype=np.int64)
    rest = order[cut:]
    window[rest] = 1 + (np.arange(len(rest)) * increments) // len(rest)
    latest = ratings.sort_values(["userId", "timestamp", "movieId"]).groupby("userId").tail(2)
    late = latest[window[latest.index] > 0]
    both = late.groupby("userId").size()
    fixed = both[both == 2].index
    before = pd.Series(window == 0).groupby(ratings["userId"]).sum()
    fixed = [u for u in fixed if before.get(u, 0) >= 1]  # 3+ base ratings: the split evaluates them
    moved = latest[latest["userId"].isin(fixed)].index
    window[moved] = 0
    return window, [str(u) for u in fixed]


def _tag_windows(tags: pd.DataFrame, ratings: pd.DataFrame, window: np.ndarray,
                 increments: int) -> np.ndarray:
    """Each tag event's window: the one its time falls in (the rating windows' time bounds)."""
    times = ratings.loc[window > 0].groupby(window[window > 0])["timestamp"].min()
    bounds = [times.get(w, np.inf) for w in range(1, increments + 1)]
    return np.searchsorted(np.asarray(bounds, dtype=float), tags["timestamp"].to_numpy(), side="right")


def _write(directory: Path, movies: pd.DataFrame, ratings: pd.DataFrame, tags: pd.DataFrame) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    movies.to_csv(directory / "movies.csv", index=False)
    ratings.to_csv(directory / "ratings.csv", index=False)
    tags.to_csv(directory / "tags.csv", index=False)


def build_replay(root: Path, base: float, increments: int, users: int | None = None,
                 source: Path = SOURCE) -> Replay:
    """Write the base, the increments and the cumulative directories under ``root`` (``users``:
    only the ratings and tags of the first N user ids, a smoke run)."""
    movies = pd.read_csv(source / "movies.csv")
    ratings = pd.read_csv(source / "ratings.csv")
    tags = pd.read_csv(source / "tags.csv")
    if users is not None:
        kept = np.sort(ratings["userId"].unique())[:users]
        ratings = ratings[ratings["userId"].isin(kept)].reset_index(drop=True)
        tags = tags[tags["userId"].isin(kept)].reset_index(drop=True)
    window, fixed = _windows(ratings, base, increments)
    tag_window = _tag_windows(tags, ratings, window, increments)
    first = pd.concat([pd.Series(window, index=ratings["movieId"]),
                       pd.Series(tag_window, index=tags["movieId"])]).groupby(level=0).min()
    movie_window = movies["movieId"].map(first).fillna(0).astype(int).to_numpy()
    replay = Replay(root / "base", [], [], fixed)
    for w in range(increments + 1):
        parts = (movies[movie_window == w], ratings[window == w], tags[tag_window == w])
        target = replay.base if w == 0 else root / f"increment-{w}"
        _write(target, *parts)
        replay.counts.append({"ratings": len(parts[1]), "new_movies": len(parts[0]),
                              "tag_events": len(parts[2])})
        if w:
            replay.increments.append(target)
            _write(root / f"cumulative-{w}", movies[movie_window <= w], ratings[window <= w],
                   tags[tag_window <= w])
            replay.cumulative.append(root / f"cumulative-{w}")
    return replay


# ---------------------------------------------------------------- running the stages


@dataclass
class Cost:
    seconds: dict[str, float] = field(default_factory=dict)
    tokens: int = 0

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def tailormind(cost: Cost | None, stage: str, *args: str) -> str:
    """Run one ``tailormind`` command; its wall seconds go to ``cost.seconds[stage]``."""
    exe = Path(sys.executable).with_name("tailormind")
    start = time.perf_counter()
    done = subprocess.run([str(exe), *args], capture_output=True, text=True, env=os.environ.copy())
    if done.returncode:
        raise SystemExit(f"tailormind {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    if cost is not None:
        cost.seconds[stage] = cost.seconds.get(stage, 0.0) + time.perf_counter() - start
    return done.stdout


def _tokens(report_json: str) -> int:
    report = json.loads(report_json)
    return int(report["prompt_tokens"]) + int(report["completion_tokens"])


def prepare_base(replay: Replay, ws: Path, profile_users: int, epochs: list[str]) -> Cost:
    """Import, split, describe, train, recommend and profile the base workspace."""
    cost = Cost()
    w = ["--workspace", str(ws)]
    tailormind(cost, "import+split", "data", "import", str(replay.base), *w)
    tailormind(cost, "import+split", "data", "split", *w)
    tailormind(cost, "describe", "profile", "describe", *w)
    tailormind(cost, "cf", "cf", "train", "--model", CF_MODEL, *epochs, *w)
    tailormind(cost, "cf", "cf", "recommend", "--model", CF_MODEL, *w)
    cost.tokens = _tokens(tailormind(cost, "profiles", "profile", "run", "--users",
                                     str(profile_users), "--json", *w))
    return cost


def incremental_step(ws: Path, increment: Path) -> Cost:
    cost, w = Cost(), ["--workspace", str(ws)]
    tailormind(cost, "append", "data", "append", str(increment), *w)
    tailormind(cost, "describe", "profile", "describe", *w)
    tailormind(cost, "cf", "cf", "train", "--resume", "--model", CF_MODEL, *w)
    tailormind(cost, "cf", "cf", "recommend", "--users-changed", "--model", CF_MODEL, *w)
    cost.tokens = _tokens(tailormind(cost, "profiles", "profile", "update", "--json", *w))
    return cost


def full_step(ws: Path, increment: Path, everything: Path, scratch: Path, profiled: list[str],
              epochs: list[str]) -> Cost:
    cost, w = Cost(), ["--workspace", str(ws)]
    tailormind(None, "append", "data", "append", str(increment), *w)  # the same data, untimed
    shutil.rmtree(scratch, ignore_errors=True)
    tailormind(cost, "import+split", "data", "import", str(everything), "--workspace", str(scratch))
    tailormind(cost, "import+split", "data", "split", "--workspace", str(scratch))
    shutil.rmtree(scratch, ignore_errors=True)
    tailormind(cost, "describe", "profile", "describe", *w)
    tailormind(cost, "cf", "cf", "train", "--model", CF_MODEL, *epochs, *w)
    tailormind(cost, "cf", "cf", "recommend", "--model", CF_MODEL, *w)
    chosen = [arg for user in profiled for arg in ("--user", user)]  # the base's sample, again
    cost.tokens = _tokens(tailormind(cost, "profiles", "profile", "run", *chosen, "--force",
                                     "--json", *w))
    return cost


# ---------------------------------------------------------------- quality


def per_user(ws: Path, users: list[str]) -> dict[str, Any]:
    """Per-user test metrics (``PerUser``, keyed by user id: the two workspaces are matched by
    id, never by row) of each of :data:`QUALITY_ROWS` (``users``: those with fixed test sets)."""
    from tailormind.cf.data import load_cf_data
    from tailormind.cf.evaluate import PerUser, evaluate_cf
    from tailormind.config import load_config
    from tailormind.data.workspace import Workspace
    from tailormind.profiling.evaluate import evaluate_profiles

    workspace = Workspace.open(ws)
    ids = np.asarray(load_cf_data(workspace).user_ids)

    def by_id(found: PerUser, keep: np.ndarray | None = None) -> PerUser:
        keep = np.ones(len(found.users), dtype=bool) if keep is None else keep
        return PerUser(ids[found.users][keep], {m: v[keep] for m, v in found.values.items()})

    every = evaluate_cf(workspace, [CF_MODEL]).per_user[(CF_MODEL, "test")]
    fixed = np.isin(ids[every.users], np.asarray(users, dtype=ids.dtype))
    profiles = evaluate_profiles(workspace, load_config()).per_user[("profile (refined)", "profiled")]
    return {"cf": by_id(every, fixed), "cf (all users)": by_id(every), "profiles": by_id(profiles)}


def profiled_users(ws: Path) -> list[str]:
    from tailormind.data.workspace import Workspace

    return sorted(Workspace.open(ws).read("profiles", columns=["user_id"]).column("user_id").to_pylist())


def paired(inc: dict[str, Any], full: dict[str, Any]) -> list[dict[str, Any]]:
    from tailormind.cf.evaluate import Bootstrap, paired_differences
    from tailormind.config import load_config

    boot = Bootstrap.of(load_config())
    out = []
    for what in QUALITY_ROWS:
        out += paired_differences("incremental", inc[what], "full", full[what], bootstrap=boot,
                                  metrics=METRICS, what=what)
    return out


def same_test_sets(a: Path, b: Path) -> bool:
    from tailormind.data.workspace import Workspace

    return Workspace.open(a).read("candidates").equals(Workspace.open(b).read("candidates"))


# ---------------------------------------------------------------- the table


STAGES = ("append", "import+split", "describe", "cf", "profiles")


def print_costs(rows: list[dict[str, Any]]) -> None:
    print("\nCost per increment (wall seconds per stage, LLM tokens; inc / full)")
    head = ["step", *STAGES, "total s", "tokens", "inc/full s", "inc/full tokens"]
    print(" | ".join(head))
    for row in rows:
        inc, full = row["incremental"], row["full"]
        cells = [f"{row['step']}"]
        for stage in STAGES:
            cells.append(f"{inc['seconds'].get(stage, 0):.1f} / {full['seconds'].get(stage, 0):.1f}")
        cells += [f"{inc['total']:.1f} / {full['total']:.1f}", f"{inc['tokens']:,} / {full['tokens']:,}",
                  f"{inc['total'] / full['total']:.0%}",
                  f"{inc['tokens'] / full['tokens']:.0%}" if full["tokens"] else "-"]
        print(" | ".join(cells))


def print_quality(rows: list[dict[str, Any]]) -> None:
    print("\nQuality: incremental − full, per user, 95% paired-bootstrap interval")
    print("step | what | n | " + " | ".join(METRICS))
    for row in rows:
        for what in QUALITY_ROWS:
            entries = {e["metric"]: e for e in row["paired"] if e["what"] == what}
            if not entries:
                continue
            n = next(iter(entries.values()))["n"]
            cells = [f"{entries[m]['difference']:+.3f} [{entries[m]['low']:+.3f}, "
                     f"{entries[m]['high']:+.3f}]" for m in METRICS if m in entries]
            print(f"{row['step']} | {what} | {n} | " + " | ".join(cells))


# ---------------------------------------------------------------- main


def _cost_dict(cost: Cost) -> dict[str, Any]:
    return {"seconds": cost.seconds, "total": cost.total, "tokens": cost.tokens}


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    replay = build_replay(root / "replay", args.base, args.increments, args.users)
    print(f"replay: {replay.counts}; {len(replay.fixed_users)} users with fixed test sets",
          flush=True)
    epochs = ["--epochs", str(args.epochs)] if args.epochs else []
    inc_ws, full_ws = root / "ws-incremental", root / "ws-full"
    base = prepare_base(replay, inc_ws, args.profile_users, epochs)
    print(f"base: {base.total:.0f} s, {base.tokens:,} tokens", flush=True)
    shutil.copytree(inc_ws, full_ws)
    profiled = profiled_users(inc_ws)
    rows = []
    for step, (increment, everything) in enumerate(zip(replay.increments, replay.cumulative,
                                                       strict=True), start=1):
        inc = incremental_step(inc_ws, increment)
        full = full_step(full_ws, increment, everything, root / "scratch", profiled, epochs)
        if not same_test_sets(inc_ws, full_ws):
            raise SystemExit(f"increment {step}: the two paths' candidate sets differ")
        row = {"step": step, "incremental": _cost_dict(inc), "full": _cost_dict(full),
               "paired": paired(per_user(inc_ws, replay.fixed_users),
                                per_user(full_ws, replay.fixed_users))}
        rows.append(row)
        print(f"increment {step}: incremental {inc.total:.0f} s / {inc.tokens:,} tokens, full "
              f"{full.total:.0f} s / {full.tokens:,} tokens", flush=True)
    return {"replay": replay.counts, "fixed_users": len(replay.fixed_users),
            "base": _cost_dict(base), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="Keep the workspaces here (default: a temp dir).")
    parser.add_argument("--base", type=float, default=0.8, help="Fraction of ratings in the base.")
    parser.add_argument("--increments", type=int, default=4)
    parser.add_argument("--users", type=int, help="Only the first N user ids (a smoke run).")
    parser.add_argument("--profile-users", type=int, default=20,
                        help="Seeded sample profiled on both paths (SmolLM2 on CPU: ~8 s each).")
    parser.add_argument("--epochs", type=int, help="Cap on from-scratch CF epochs (default: cf.epochs).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        result = run(args, root)
    print_costs(result["rows"])
    print_quality(result["rows"])
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
