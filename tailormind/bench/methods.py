"""TailorBench's methods: TailorMind, the ground-truth UGC, and the ablations
(``docs/architecture.md``, "TailorBench"). Every method is the same pipeline with one thing
changed, scored on the same users, seeds and judge:

=================  ===========================================================================
tailormind         the product: refined profile, exemplars (RAG), cohesion reflection, CF
ground_truth       the user's TEST item, scored as if it were the generated post (no generation)
profile_free       the same pipeline with one generic profile for everyone (template
                   ``prompts/bench/generic_profile.txt``); exemplars are still retrieved from the
                   user's own history ∪ CF, ranked by the generic profile
no_rag             no style exemplars (``generation.use_exemplars: false``)
no_reflection      the first draft is kept (``generation.reflection_rounds: 0``)
no_cf              profiles initialised without CF(D_u) (``profiles__nocf``, profiling.use_cf
                   false) and exemplars from the history only (``generation.use_cf: false``)
=================  ===========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tailormind.config import Settings
from tailormind.core.vocabulary import BENCH_METHODS, BenchMethodName
from tailormind.errors import ConfigError
from tailormind.profiling.profiles import PROFILES_TABLE
from tailormind.prompts import render

BENCH_DIR = "bench"


@dataclass(frozen=True)
class Method:
    name: BenchMethodName
    label: str
    what: str
    generates: bool = True
    overrides: dict[str, Any] = field(default_factory=dict)  # nested settings overrides
    profiles_variant: str | None = None  # profiles__<variant>, profiled by the bench if missing
    fixed_profile: bool = False

    @property
    def profiles_table(self) -> str:
        return f"{PROFILES_TABLE}__{self.profiles_variant}" if self.profiles_variant \
            else PROFILES_TABLE

    def settings(self, base: Settings) -> Settings:
        """``base`` with this method's overrides (the seeds and models stay the same)."""
        if not self.overrides:
            return base
        return base.with_overrides(self.overrides)

    def output_root(self, workspace_root: Path) -> Path:
        """Where this method's bundles go: the product's posts stay in the workspace's
        ``generations/``; every other method writes under ``bench/methods/<name>/``."""
        if self.name == "tailormind":
            return workspace_root
        return workspace_root / BENCH_DIR / "methods" / self.name


_DEFINED = {m.name: m for m in (
    Method("tailormind", "TailorMind", "refined profile + exemplars + reflection + CF"),
    Method("ground_truth", "Ground-truth UGC", "the user's held-out test item, as written",
           generates=False),
    Method("profile_free", "Profile-free", "one generic profile for every user",
           fixed_profile=True),
    Method("no_rag", "w/o RAG", "no style exemplars",
           overrides={"generation": {"use_exemplars": False}}),
    Method("no_reflection", "w/o reflection", "first draft kept, no cohesion reflection",
           overrides={"generation": {"reflection_rounds": 0}}),
    Method("no_cf", "w/o CF", "profiles and exemplars without CF(D_u)",
           overrides={"profiling": {"use_cf": False}, "generation": {"use_cf": False}},
           profiles_variant="nocf"),
)}
#: One definition per name of ``core.vocabulary.BENCH_METHODS``, in its (report) order.
METHODS: dict[str, Method] = {name: _DEFINED[name] for name in BENCH_METHODS}


def generic_profile() -> str:
    """The profile-free baseline's profile text (a template file, like every prompt)."""
    return render("bench/generic_profile.txt").strip()


def resolve_methods(names: list[str] | None, settings: Settings) -> list[Method]:
    """The chosen methods in report order (default: ``bench.methods``); unknown names are a
    ConfigError naming the valid ones."""
    chosen = list(names) if names else list(settings.bench.methods)
    unknown = [n for n in chosen if n not in METHODS]
    if unknown:
        raise ConfigError(f"unknown bench method {unknown[0]!r}; choose from "
                          f"{', '.join(METHODS)}")
    return [METHODS[n] for n in BENCH_METHODS if n in chosen]
