"""Score every method on the same TEST candidate sets — the only place the test item is read.

Methods: popularity; each trained CF checkpoint (LightGCN, HypergraphCF); ``history-content``
(cosine with the mean description embedding of the train items: content without a profile);
``profile (init)`` and ``profile (refined)`` (cosine with the profile's embedding); every
``profiles__<variant>`` table (e.g. ``nocf``: init without CF augmentation); the hybrid ranker of
:mod:`tailormind.profiling.fusion` without the profile signal and with it; and, on request, the
listwise LLM ranker with the refined profile.

Every fit is on VALIDATION sets. The hybrid rows use the weights ``tailormind profile fit`` saved
(:mod:`tailormind.profiling.fit`: fit with the INITIAL profile, applied with the refined one);
without saved weights they are fit the same way in memory, and nothing is saved: evaluating
never changes the workspace (``EvalReport.fusion_source`` says which). ``hybrid w/o profile`` is
fit on the same users' validation sets, so the difference between the two rows is the
profile's contribution.

Rows are reported on the profiled users (every method, so rows compare) and, for methods without
LLM calls, also on all users (``hybrid w/o profile`` refit on every user's validation set there).
``curve`` gives the mean validation rank and the test metrics after each refinement iteration.

``paired`` states every comparison as a paired difference over the same users (matched by user
id; :func:`tailormind.cf.evaluate.paired_differences`): per-user Recall@10/20 and NDCG@10/20 of
a minus b with a paired-bootstrap interval (``bench.bootstrap_resamples``, ``bench.confidence``,
``seeds.bench``). On the profiled users: the hybrid with against without the profile, the refined
against the initial profile (alone and in the hybrid), every variant against the main table, the
LLM ranker against the same profiles ranked by embedding, and the hybrid, its profile-free fit and
the profiles against the CF models / popularity; on all users (when that is more users than
the profiled ones), the methods without LLM calls.
The per-user ranks behind them are kept in ``EvalReport.per_user`` (not a dataclass field, so
``asdict`` and ``--json`` carry only the paired list).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tailormind.cf.data import CandidateIndex, CFData
from tailormind.cf.evaluate import Bootstrap, PerUser, paired_differences
from tailormind.cf.popularity import popularity_scores
from tailormind.cf.train import score_candidates
from tailormind.config import Settings
from tailormind.core.metrics import candidate_metrics, candidate_ranks, metrics_from_ranks
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.models.registry import load_role
from tailormind.models.roles import TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fit import fit_with_profiles, initial_vectors, profile_rows, subset_sets
from tailormind.profiling.fusion import FUSION_ARTIFACT, Fusion, Signals
from tailormind.profiling.parts import PARTS_DIR, PartWriter
from tailormind.profiling.profiles import PROFILES_TABLE
from tailormind.profiling.rankers import LLMRanker, RankQuery, presentation_order
from tailormind.prompts.ugc import CHARS_PER_TOKEN

NO_LLM = {"llm_tokens_per_user": 0.0, "seconds_per_user": 0.0}


@dataclass
class EvalReport:
    users_all: int
    users_profiled: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    fusion_weights: dict[str, float] = field(default_factory=dict)
    fusion_weights_no_profile: dict[str, float] = field(default_factory=dict)
    fusion_source: str = ""  # "saved by profile fit" or "fit in memory (not saved)"
    #: paired differences over the same users (see the module docstring), one per (a, b, users,
    #: metric): PairedDifference.as_dict() + ``users`` ("profiled" / "all") and ``confidence``
    paired: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        #: (method, "profiled" | "all") -> that method's per-user test ranks, by user index. Not a
        #: dataclass field: ``asdict(report)`` (the --json output) stays free of per-user numbers.
        self.per_user: dict[tuple[str, str], PerUser] = {}

    def record(self, method: str, users: str, sets: CandidateIndex,
               ranks: np.ndarray) -> dict[str, float]:
        """Keep ``method``'s per-user ranks on ``sets`` (users: "profiled" / "all"); its metrics."""
        self.per_user[(method, users)] = PerUser.from_ranks(sets.users, ranks)
        return metrics_from_ranks(ranks)

    def pair(self, a: str, b: str, users: str, bootstrap: Bootstrap) -> None:
        """``a − b`` on the users both were scored on (no entry when either is missing)."""
        if (a, users) in self.per_user and (b, users) in self.per_user:
            self.paired += paired_differences(a, self.per_user[(a, users)],
                                              b, self.per_user[(b, users)],
                                              bootstrap=bootstrap, users=users)


def variant_tables(workspace: Workspace) -> list[str]:
    """Every ``profiles__<variant>``: finished tables and runs stopped early (parts only)."""
    names = {n for n in workspace.manifest.get("tables", {}) if n.startswith("profiles__")}
    parts = workspace.root / PARTS_DIR
    if parts.is_dir():
        names |= {p.name for p in parts.iterdir() if p.name.startswith("profiles__")}
    return sorted(names)


class CandidateScorer:
    """Per-method candidate scores for any CandidateIndex (user and item indices of CFData)."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals
        self.vectors = signals.item_vectors

    def popularity(self, sets: CandidateIndex) -> np.ndarray:
        return popularity_scores(self.signals.data, sets)

    def cf(self, name: str, sets: CandidateIndex) -> np.ndarray:
        return score_candidates(*self.signals.cf[name], sets)

    def history(self, sets: CandidateIndex) -> np.ndarray:
        out = np.zeros(sets.items.shape)
        for row, user in enumerate(sets.users.tolist()):
            past = self.signals.histories[user]
            if len(past):
                out[row] = self.vectors[sets.items[row]] @ self.vectors[past].mean(axis=0)
        return out

    def profile(self, vectors: dict[int, np.ndarray], sets: CandidateIndex) -> np.ndarray:
        return np.einsum("nmd,nd->nm", self.vectors[sets.items], profile_rows(vectors, sets))


def _cost(rows: list[dict]) -> dict[str, float]:
    return {"llm_tokens_per_user": float(np.mean([r["prompt_tokens"] + r["completion_tokens"]
                                                  for r in rows])),
            "seconds_per_user": float(np.mean([r["seconds"] for r in rows]))}


def evaluate_profiles(workspace: Workspace, settings: Settings,
                      variant_tables: list[str] | None = None, *,
                      llm_ranker_users: int = 0) -> EvalReport:
    """The evaluation table; ``llm_ranker_users`` > 0 adds the listwise LLM ranker on that
    many of the profiled users (it costs ~6 LLM calls per user)."""
    if not workspace.has(PROFILES_TABLE):
        raise WorkspaceError(f"workspace {workspace.root} has no profiles; run "
                             f"`tailormind profile run --workspace {workspace.root}` first")
    run = _Evaluation(workspace, settings)
    run.baselines()
    run.hybrids()
    for table in variant_tables or []:
        run.variant(table)
    if llm_ranker_users:
        run.llm_ranker(llm_ranker_users)
    report = run.report
    report.curve = refinement_curve(run.profiles, run.user_index, run.scorer, run.data, settings)
    pair_methods(report, list(run.signals.cf), run.variants, Bootstrap.of(settings))
    return report


Scores = Callable[[CandidateIndex], np.ndarray]


class _Evaluation:
    """One evaluation run: every method's rows on the same test sets (see the module doc)."""

    def __init__(self, workspace: Workspace, settings: Settings) -> None:
        self.workspace, self.settings = workspace, settings
        self.features = ItemFeatures.load(workspace)
        self.signals = Signals(workspace, settings, self.features)
        self.data, self.scorer = self.signals.data, CandidateScorer(self.signals)
        self.user_index = self.signals.user_index
        self.profiles = workspace.read(PROFILES_TABLE).to_pylist()
        self.refined = {self.user_index[p["user_id"]]: np.asarray(p["embedding"])
                        for p in self.profiles}
        self.initial = initial_vectors(self.profiles, self.user_index)
        self.cost = _cost(self.profiles)
        self.test_sample = subset_sets(self.data.test, np.array(sorted(self.refined)))
        self.report = EvalReport(users_all=len(self.data.test),
                                 users_profiled=len(self.test_sample))
        self.variants: list[tuple[str, str]] = []  # (variant row, main row) pairs
        self.fusion: Fusion | None = None

    def add(self, method: str, scores_of: Scores, all_scores_of: Scores | None = None,
            **info: Any) -> None:
        """A row on the profiled users (and, with ``all_scores_of``, on all users)."""
        report, sample, everyone = self.report, self.test_sample, self.data.test
        row: dict[str, Any] = {"method": method, "users": len(sample), **info}
        row["sample"] = report.record(method, "profiled", sample,
                                      candidate_ranks(scores_of(sample)))
        if all_scores_of is not None:
            row["all"] = report.record(method, "all", everyone,
                                       candidate_ranks(all_scores_of(everyone)))
        report.rows.append(row)

    def baselines(self) -> None:
        """Popularity, every CF model, history content, and the profiles alone."""
        scorer = self.scorer
        self.add("popularity", scorer.popularity, scorer.popularity, **NO_LLM)
        for name in self.signals.cf:
            self.add(name, lambda s, n=name: scorer.cf(n, s), lambda s, n=name: scorer.cf(n, s),
                     **NO_LLM)
        self.add("history-content", scorer.history, scorer.history, **NO_LLM)
        self.add("profile (init)", lambda s: scorer.profile(self.initial, s), **self.cost)
        self.add("profile (refined)", lambda s: scorer.profile(self.refined, s), **self.cost)

    def hybrids(self) -> None:
        """The hybrid without the profile (fit here) and with it (``profile fit``'s weights)."""
        signals, settings, data = self.signals, self.settings, self.data
        valid_sample = subset_sets(data.valid, np.array(sorted(self.refined)))
        plain = Fusion.fit(signals, valid_sample.users, valid_sample.items, None, settings)
        plain_all = Fusion.fit(signals, data.valid.users, data.valid.items, None, settings)
        self.report.fusion_weights_no_profile = plain.as_dict()
        self.add("hybrid w/o profile", lambda s: plain.score(signals.stack(s.users, s.items)),
                 lambda s: plain_all.score(signals.stack(s.users, s.items)), **NO_LLM)
        self.fusion, self.report.fusion_source = hybrid_weights(self.workspace, signals,
                                                                self.profiles, settings)
        self.report.fusion_weights = self.fusion.as_dict()
        self.add("hybrid (init profile)", self.hybrid(self.initial), **self.cost)
        self.add("hybrid", self.hybrid(self.refined), **self.cost)

    def hybrid(self, vectors: dict[int, np.ndarray]) -> Scores:
        assert self.fusion is not None
        fusion, signals = self.fusion, self.signals
        return lambda s: fusion.score(signals.stack(s.users, s.items, profile_rows(vectors, s)))

    def variant(self, table: str) -> None:
        """A ``profiles__<variant>`` table's rows, beside the main table's on the same users."""
        # a finished variant is a table; one stopped early (``--limit``) is still parts
        found = (self.workspace.read(table) if self.workspace.has(table)
                 else PartWriter(self.workspace, table, "user_id").read_all())
        if found is None or not found.num_rows:
            return
        rows = found.to_pylist()
        vectors = {self.user_index[r["user_id"]]: np.asarray(r["embedding"]) for r in rows}
        subset = subset_sets(self.data.test, np.array(sorted(vectors)))
        name = table.split("__", 1)[1]
        main = {u: v for u, v in self.refined.items() if u in vectors}
        same = subset_sets(subset, np.array(sorted(main))) if main else None
        scorers: list[tuple[str, str, Callable[[CandidateIndex, dict], np.ndarray]]] = [
            (f"profile (refined, {name})", "profile (refined)",
             lambda sets, v: self.scorer.profile(v, sets)),
            (f"hybrid ({name})", "hybrid", lambda sets, v: self.hybrid(v)(sets))]
        for method, main_method, score in scorers:
            self.variants.append((method, main_method))
            on_main = (candidate_metrics(score(same, main))
                       | {"users": len(same), "method": main_method}) if same is not None else None
            self.report.rows.append({
                "method": method, "users": len(subset),
                "sample": self.report.record(method, "profiled", subset,
                                             candidate_ranks(score(subset, vectors))),
                "main_on_same_users": on_main, **_cost(rows)})

    def llm_ranker(self, n_users: int) -> None:
        """The listwise LLM ranker's row, beside the same profiles ranked by embedding."""
        row = _llm_ranker_row(self.data, self.settings, self.features, self.profiles, n_users)
        user_ids, ranks = row.pop("user_ids"), row.pop("ranks")
        users = np.array([self.user_index[u] for u in user_ids], dtype=np.int64)
        self.report.per_user[(row["method"], "profiled")] = PerUser.from_ranks(users, ranks)
        same = subset_sets(self.data.test, np.sort(users))
        row["main_on_same_users"] = (candidate_metrics(self.scorer.profile(self.refined, same))
                                     | {"users": len(same), "method": "profile (refined)"})
        self.report.rows.append(row)
        self.variants.append((row["method"], "profile (refined)"))


def hybrid_weights(workspace: Workspace, signals: Signals, profiles: list[dict],
                   settings: Settings) -> tuple[Fusion, str]:
    """The weights ``profile fit`` saved, else the same fit in memory (never saved here)."""
    if workspace.has_artifact(FUSION_ARTIFACT):
        return Fusion.load(workspace, signals), "saved by profile fit"
    return fit_with_profiles(signals, profiles, settings), "fit in memory (not saved)"


def pair_methods(report: EvalReport, cf_names: list[str], variants: list[tuple[str, str]],
                 bootstrap: Bootstrap) -> None:
    """Fill ``report.paired`` from ``report.per_user``: every comparison the table invites, as
    a − b over the same users (a pair whose rows are missing is skipped)."""
    profiled = [
        ("hybrid", "hybrid w/o profile"),  # what the profile adds
        ("profile (refined)", "profile (init)"),  # what refinement does to the profile alone
        ("hybrid", "hybrid (init profile)"),  # ... and inside the hybrid
        *variants,  # each variant against the main table; the LLM ranker against the embedding
        *((hybrid, name) for hybrid in ("hybrid", "hybrid w/o profile") for name in cf_names),
        *((profile, "popularity") for profile in ("profile (init)", "profile (refined)")),
    ]
    baselines = [  # methods without LLM calls: also on all users
        *((name, "popularity") for name in cf_names),
        *((a, b) for i, a in enumerate(cf_names) for b in cf_names[i + 1:]),
        ("history-content", "popularity"),
    ]
    for a, b in [*profiled, *baselines]:
        report.pair(a, b, "profiled", bootstrap)
    if report.users_all > report.users_profiled:  # every user profiled: "all" is the same users
        for a, b in [*baselines, *(("hybrid w/o profile", name) for name in cf_names)]:
            report.pair(a, b, "all", bootstrap)


def _llm_ranker_row(data: CFData, settings: Settings, features: ItemFeatures,
                    profiles: list[dict], n_users: int,
                    text: TextModel | None = None) -> dict[str, Any]:
    """The listwise LLM ranker with the refined profile on the first ``n_users`` profiled users
    (sorted by id, so the subset is stable), each test set in its seeded presentation order; its
    cost is its own ranking calls. ``ranker_stats`` counts windows, unranked and unknown ids."""
    chosen = sorted(profiles, key=lambda p: p["user_id"])[:n_users]
    index = {u: i for i, u in enumerate(data.user_ids)}
    rows = {int(u): r for r, u in enumerate(data.test.users.tolist())}
    text = text or load_role("text", settings)
    ranker = LLMRanker(features, text, window=settings.profiling.llm_window,
                       description_chars=settings.profiling.prompt_item_chars,
                       profile_chars=CHARS_PER_TOKEN * settings.profiling.profile_tokens,
                       seed=settings.seeds.profiling)
    queries, positives = [], []
    for p in chosen:
        row = data.test.items[rows[index[p["user_id"]]]]
        query = RankQuery(p["user_id"], p["profile"], [data.item_ids[i] for i in row], split="test")
        positives.append(query.candidates[0])
        query.candidates = presentation_order(query, settings.seeds.profiling)
        queries.append(query)
    before = (text.stats["prompt_tokens"], text.stats["completion_tokens"])
    started = time.perf_counter()
    scores = np.stack([positive_first(score, q.candidates, z) for score, q, z
                       in zip(ranker.score(queries), queries, positives, strict=True)])
    seconds = time.perf_counter() - started
    tokens = (text.stats["prompt_tokens"] - before[0]) + (text.stats["completion_tokens"] - before[1])
    return {"method": "LLM ranker (refined profile)", "users": len(queries),
            "user_ids": [p["user_id"] for p in chosen],
            "sample": candidate_metrics(scores), "llm_tokens_per_user": tokens / len(queries),
            "ranks": candidate_ranks(scores),  # per-user, for the paired differences
            "seconds_per_user": seconds / len(queries), "ranker_stats": dict(ranker.stats),
            "candidate_order": "seeded shuffle (sorted ids permuted by seeds.profiling, user, "
                               "split): the positive is in no fixed place"}


def positive_first(scores: np.ndarray, candidates: list[str], positive: str) -> np.ndarray:
    """Scores re-ordered into the metrics' layout (the positive in column 0); the ranker saw the
    seeded presentation order, never this one."""
    at = candidates.index(positive)
    return np.concatenate([scores[at:at + 1], np.delete(scores, at)])


def refinement_curve(profiles: list[dict], user_index: dict[str, int], scorer: CandidateScorer,
                     data: CFData, settings: Settings) -> list[dict[str, Any]]:
    """Validation rank and test metrics of the accepted profile after each iteration."""
    embed = load_role("embed", settings)
    n_max = settings.profiling.n_max
    per_iteration: list[dict[int, str]] = [{} for _ in range(n_max + 1)]
    ranks: list[list[int]] = [[] for _ in range(n_max + 1)]
    for p in profiles:
        history = json.loads(p["iterations"])
        user = user_index[p["user_id"]]
        current, rank = p["initial_profile"], p["valid_rank_initial"]
        for n in range(n_max + 1):
            for step in history:
                if step["iteration"] == n and step["accepted"]:
                    current, rank = step["profile"], step["valid_rank"]
            per_iteration[n][user] = current
            ranks[n].append(rank)
    out = []
    for n in range(n_max + 1):
        users = sorted(per_iteration[n])
        texts = [per_iteration[n][u] for u in users]
        matrix = embed.embed(texts)
        matrix[np.array([not t for t in texts], dtype=bool)] = 0.0  # no profile: no vector
        vectors = dict(zip(users, matrix, strict=True))
        sets = subset_sets(data.test, np.array(users))
        out.append({"iteration": n, "mean_valid_rank": float(np.mean(ranks[n])),
                    "test": candidate_metrics(scorer.profile(vectors, sets))})
    return out
