"""``tailormind profile fit``: the hybrid ranker's weights, fit on VALIDATION sets and saved.

The weights are fit on the profiled users' validation sets with each user's INITIAL profile
embedding: the refined profile was optimised on the validation item, so its similarity there is
inflated and would overweight the profile signal. They are saved as the workspace's ``fusion``
artifact, which profiling with ``ranker: hybrid``, ``profile eval`` and the API load. It is a
stage of its own (and of the pipeline job), so evaluating never changes the workspace.
"""

from __future__ import annotations

import numpy as np

from tailormind.cf.data import CandidateIndex
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fusion import Fusion, Signals
from tailormind.profiling.profiles import PROFILES_TABLE


def subset_sets(sets: CandidateIndex, users: np.ndarray) -> CandidateIndex:
    """The candidate sets of ``users`` (user indices), in their original order."""
    keep = np.isin(sets.users, users)
    return CandidateIndex(sets.users[keep], sets.items[keep])


def profile_rows(vectors: dict[int, np.ndarray], sets: CandidateIndex) -> np.ndarray:
    """One profile vector per candidate set (its user's), stacked."""
    return np.stack([vectors[u] for u in sets.users.tolist()]) if len(sets) else np.zeros((0, 1))


def initial_vectors(profiles: list[dict], user_index: dict[str, int]) -> dict[int, np.ndarray]:
    """Each profiled user's INITIAL profile embedding, by user index."""
    return {user_index[p["user_id"]]: np.asarray(p["initial_embedding"]) for p in profiles}


def fit_with_profiles(signals: Signals, profiles: list[dict], settings: Settings) -> Fusion:
    """The hybrid's weights with the profile signal (see the module docstring)."""
    initial = initial_vectors(profiles, signals.user_index)
    valid = subset_sets(signals.data.valid, np.array(sorted(initial)))
    return Fusion.fit(signals, valid.users, valid.items, profile_rows(initial, valid), settings)


def fit_hybrid(workspace: Workspace, settings: Settings) -> Fusion:
    """Fit the hybrid's weights on the workspace's profiles and save them (atomically)."""
    if not workspace.has(PROFILES_TABLE):
        raise WorkspaceError(f"workspace {workspace.root} has no profiles to fit the hybrid "
                             f"ranker with; run `tailormind profile run --workspace "
                             f"{workspace.root}` first")
    signals = Signals(workspace, settings, ItemFeatures.load(workspace))
    fusion = fit_with_profiles(signals, workspace.read(PROFILES_TABLE).to_pylist(), settings)
    fusion.save(workspace)
    return fusion
