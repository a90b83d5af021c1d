"""A small finished TailorBench run, for the tests of what reads a bench report (the rating page,
the human section): scripted writer and judge (``tests.fakes``), the real MiniLM embedder; and
the ratings of a hand-worked example with its α and ρ computed by hand."""

from __future__ import annotations

from pathlib import Path

from tailormind.bench.run import BenchRun, run_bench
from tailormind.bench.users import select_users
from tailormind.config import Settings
from tailormind.data.workspace import Workspace
from tailormind.generation.pipeline import Roles
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh
from tests.fakes import ProfilingText, ScriptedWriter, rule_judge
from tests.workspaces import make_profiler

#: (method, user index) -> {rater: (novelty, aesthetic, hallucination)}; users sorted by id.
HAND = {("tailormind", 0): {"ann": (5, 3, 1), "bob": (4, 3, 1)},
        ("tailormind", 1): {"ann": (4, 4, 0), "bob": (4, 5, 1)},
        ("ground_truth", 0): {"ann": (2, 2, 0), "bob": (1, 2, 0)},
        ("ground_truth", 1): {"ann": (3, 5, 0), "bob": (3, 4, 0)}}
# Krippendorff's α by hand (units = the 4 posts, 2 ratings each, so every pair weighs 1):
# novelty, ordinal: units {5,4} {4,4} {2,1} {3,3}: o_12 = o_21 = 1, o_45 = o_54 = 1, o_33 = 2,
#   o_44 = 2; n_1..n_5 = 1, 1, 2, 3, 1 (n = 8). δ²(1,2) = (2 − 1)² = 1, δ²(4,5) = (4 − 2)² = 4, so
#   Σ o δ² = 2·1 + 2·4 = 10. Σ_c≠k n_c n_k δ² = 2·(1·1·1 + 1·2·6.25 + 1·3·25 + 1·1·49 + 1·2·2.25
#   + 1·3·16 + 1·1·36 + 2·3·6.25 + 2·1·20.25 + 3·1·4) = 2·316 = 632. α = 1 − 7·10/632.
# aesthetic, ordinal: units {3,3} {4,5} {2,2} {5,4}: n_2..n_5 = 2 each; Σ o δ² = 4·δ²(4,5) =
#   4·(4 − 2)² = 16; Σ n_c n_k δ² = 2·4·(4 + 16 + 36 + 4 + 16 + 4) = 640. α = 1 − 7·16/640.
# hallucination, nominal: units {1,1} {0,1} {0,0} {0,0}: o_01 = o_10 = 1, n_0 = 5, n_1 = 3;
#   α = 1 − 7·2/(2·5·3) = 1 − 14/30.
ALPHA = {"novelty": 1 - 70 / 632, "aesthetic": 1 - 112 / 640, "hallucination": 1 - 14 / 30}
# Spearman ρ, judge vs the raters' mean, posts in the order TM0, TM1, GT0, GT1. The rule judge
# gives every generated post the same scores (novelty 0.8, aesthetic 0.6, a hallucination) and
# the ground truth lower ones: judge ranks (centred) +1, +1, −1, −1, Σx² = 4.
# novelty means 4.5, 4, 1.5, 3 -> ranks 4, 3, 1, 2 -> centred 1.5, .5, −1.5, −.5 (Σy² = 5);
#   Σxy = 4, ρ = 4/√20.
# aesthetic means 3, 4.5, 2, 4.5 -> ranks 2, 3.5, 1, 3.5 -> −.5, 1, −1.5, 1 (Σy² = 4.5); Σxy = 1,
#   ρ = 1/√18.
# hallucination means 1, .5, 0, 0 -> ranks 4, 3, 1.5, 1.5 -> 1.5, .5, −1, −1 (Σy² = 4.5);
#   Σxy = 4, ρ = 4/√18.
RHO = {"novelty": 4 / 20 ** 0.5, "aesthetic": 1 / 18 ** 0.5, "hallucination": 4 / 18 ** 0.5}


def small_bench(profiled_ws, tmp: Path, users: int = 2,
                methods: tuple[str, ...] = ("tailormind", "ground_truth")
                ) -> tuple[Workspace, Settings, BenchRun]:
    """A copy of ``profiled_ws`` with a bench report on ``users`` users and ``methods``."""
    ws = fresh(profiled_ws, tmp)
    _, settings = profiled_ws
    chosen = [u.user_id for u in select_users(ws, users, settings.seeds.bench)]
    profile_users(ws, settings, users=chosen,
                  profiler=make_profiler(ws, settings, ProfilingText()))
    roles = Roles.load(settings, kinds=("post",))
    roles.text = ScriptedWriter()
    result = run_bench(ws, settings, users=users, methods=list(methods), roles=roles,
                       judge_model=rule_judge(), log=lambda m: None)
    return ws, settings, result
