"""Who TailorBench scores: a seeded sample of users that have a TEST candidate set.

Users that already have a profile come first (a seeded sample of them when there are more than
asked for), topped up with a seeded sample of the others, whom the benchmark then profiles — so
a benchmark after ``profile run --users N`` reuses that work instead of profiling new people.
Each user's *history* is every interaction before the test item (train and validation, oldest
first) and the *target* is the test item: the paper's coherence reference is "the user's history
and target item".
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.compute as pc

from tailormind.data.histories import split_histories
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.core.sampling import sample_users
from tailormind.profiling.profiles import PROFILES_TABLE


@dataclass(frozen=True)
class BenchUser:
    user_id: str
    history: list[str]  # train + validation items, oldest first
    target: str  # the test item


def _test_targets(workspace: Workspace) -> dict[str, str]:
    candidates = workspace.read("candidates", columns=["user_id", "split", "positive"])
    test = candidates.filter(pc.equal(candidates.column("split"), "test"))
    return dict(zip(test.column("user_id").to_pylist(), test.column("positive").to_pylist(),
                    strict=True))


def _targets_or_error(workspace: Workspace) -> dict[str, str]:
    if not workspace.has("candidates"):
        raise WorkspaceError(f"workspace {workspace.root} has no candidate sets; run `tailormind "
                             f"data split --workspace {workspace.root}` first")
    targets = _test_targets(workspace)
    if not targets:
        raise WorkspaceError(f"workspace {workspace.root} has no user with a test item to score")
    return targets


def train_histories(workspace: Workspace, users: set[str]) -> dict[str, list[str]]:
    """Each user's TRAIN items, oldest first (what reflection's relevance centroid averages)."""
    return split_histories(workspace, users, ("train",))


def all_users(workspace: Workspace) -> list[BenchUser]:
    """Every user with a test item, sorted by id (the calibration's users)."""
    targets = _targets_or_error(workspace)
    histories = split_histories(workspace, set(targets))
    return [BenchUser(u, histories[u], targets[u]) for u in sorted(targets)]


def select_users(workspace: Workspace, n: int, seed: int,
                 user_ids: list[str] | None = None) -> list[BenchUser]:
    """``user_ids`` when given (each must have a test set), else ``n`` users as the module doc
    says; sorted by id. Fewer than ``n`` eligible users: all of them."""
    targets = _targets_or_error(workspace)
    if user_ids:
        chosen = list(dict.fromkeys(str(u) for u in user_ids))
        missing = [u for u in chosen if u not in targets]
        if missing:
            known = workspace.read("users", columns=["user_id"]).column("user_id").to_pylist()
            why = "has no test item (too few interactions)" if missing[0] in set(known) \
                else "is not in the workspace"
            raise WorkspaceError(f"user {missing[0]!r} {why}; choose users with a test set")
    else:
        profiled: list[str] = []
        if workspace.has(PROFILES_TABLE):
            have = workspace.read(PROFILES_TABLE, columns=["user_id"]).column("user_id")
            profiled = sorted(u for u in set(have.to_pylist()) if u in targets)
        if len(profiled) >= n:
            chosen = sample_users(profiled, n, seed)
        else:
            others = sorted(u for u in targets if u not in set(profiled))
            chosen = profiled + sample_users(others, min(n - len(profiled), len(others)), seed)
    histories = split_histories(workspace, set(chosen))
    return [BenchUser(u, histories[u], targets[u]) for u in sorted(chosen)]
