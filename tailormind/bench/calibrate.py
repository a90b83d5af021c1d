r"""``tailormind bench calibrate``: does each TailorBench scorer measure what its column claims?

Pairs whose better member is known by construction (:mod:`tailormind.bench.calibration_pairs`,
``bench.calibration_pairs`` per dimension) are scored by every scorer that applies — the judge
the bench uses (``bench.judge``, else the ``text`` role) and the embedding metrics — each member
in the pair's shared context:

=============  ===========================================================================
coherence      judge taste fit (asked by the calibration only); text coherence
               cos(text, reference), the reference being the mean unit description
               embedding of the user's history + target; reflection's relevance
               cos(text, train-history centroid). A catalogue text's own item is left out.
novelty        judge novelty (shown the user's recent history, own item left out);
               objective novelty 1 − max cos(text, catalogue item), own item left out
aesthetic      judge aesthetic (text)
hallucination  the judge's grounded check against the pair's source items (lower is better)
=============  ===========================================================================

Outcome of a pair for one scorer, with s⁺ the known-better member's score and s⁻ the other's
(a hallucination verdict is negated first): 1 if s⁺ > s⁻, 0 if s⁺ < s⁻, ½ on a tie, and ½ when
either answer is missing (unparsable or undecided, counted in ``failed``). Accuracy is the mean
outcome over the n pairs: ties and failures count ½, so a judge that always gives the same
answer, or never a usable one, lands at exactly 0.5 — never above. The interval is the
percentile bootstrap of that mean (``bench.bootstrap_resamples``, ``bench.confidence``, seeded by
``seeds.bench``). **signal** ⇔ the interval's low end is above 0.5; an interval that includes 0.5
is *no signal*, and so is one entirely below it (``inverted``: it prefers the worse member).

The result is written to ``bench/calibration.json`` with a hash of every input (pairs and their
contexts, judge and embedder ids, judge prompts, knobs); a rerun with the same inputs reuses it.
Model calls go through the call cache, so a stopped calibration resumes cheaply.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tailormind.bench.calibration_pairs import (
    DIMENSIONS,
    FactPool,
    Pair,
    aesthetic_pairs,
    catalogue_units,
    coherence_pairs,
    hallucination_pairs,
    novelty_pairs,
    post_units,
)
from tailormind.bench.content_metrics import text_coherence
from tailormind.bench.judge import Judge
from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.posts import item_as_post
from tailormind.bench.scoring import item_title, source_line
from tailormind.bench.users import BenchUser, all_users, train_histories
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record, write_json_atomic
from tailormind.core.bootstrap import bootstrap_mean
from tailormind.core.vectors import unit_rows
from tailormind.data.workspace import Workspace
from tailormind.errors import CorruptFileError
from tailormind.generation.reflection import relevance
from tailormind.models.roles import Embedder, TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.progress import ProgressLog

CALIBRATION_JSON = "calibration.json"
VERSION = 1
SELF_JUDGED = " (self-judged)"
EXCERPT = 600
Log = Callable[[str], None]
Scores = list[tuple[float | None, float | None]]

RULES = {
    "outcome": "1 when the known-better member scores strictly better, 0 when strictly worse, "
               "0.5 on a tie and 0.5 when either answer is missing (counted as failed)",
    "signal": "the interval's low end is above 0.5; an interval that includes 0.5 (or lies "
              "below it: inverted) is no signal",
}
WHAT = {
    "coherence": "the user's own text vs another user's text (catalogue texts: own item left "
                 "out of the reference)",
    "novelty": "a text vs a near-verbatim copy of its nearest catalogue item",
    "aesthetic": "a text vs a degraded copy (sentences shuffled, a phrase repeated, "
                 "punctuation stripped)",
    "hallucination": "a text vs the same text with one fact swapped for another item's",
}


@dataclass(frozen=True)
class ScorerSpec:
    key: str  # the bench column it calibrates (judge_coherence and relevance: no column)
    label: str
    judge: bool
    lower_is_better: bool = False


SCORERS: dict[str, tuple[ScorerSpec, ...]] = {
    "coherence": (ScorerSpec("judge_coherence", "Judge taste fit [0, 1]", True),
                  ScorerSpec("text_coherence", "Text coherence: cos(text, history + target)",
                             False),
                  ScorerSpec("relevance", "Reflection relevance: cos(text, train-history "
                             "centroid)", False)),
    "novelty": (ScorerSpec("judge_novelty", "Judge novelty/interestingness [0, 1]", True),
                ScorerSpec("objective_novelty", "Objective novelty: 1 − max cos(text, "
                           "catalogue item)", False)),
    "aesthetic": (ScorerSpec("judge_aesthetic", "Judge aesthetic, text [0, 1]", True),),
    "hallucination": (ScorerSpec("hallucination", "Hallucination (0/1, grounded in the source "
                                 "items)", True, lower_is_better=True),),
}


def judge_source(provenance: dict[str, str], self_judged: bool) -> str:
    """``judge: MODEL`` (+ ``(embedded 135M model)``, + ``(self-judged)``)."""
    label = f"judge: {provenance.get('model') or provenance.get('backend') or '?'}"
    if provenance.get("backend") == "smollm2":
        label += " (embedded 135M model)"
    return label + (SELF_JUDGED if self_judged else "")


def judge_is_self(settings: Settings, judge: dict[str, str] | None = None,
                  writer: dict[str, str] | None = None) -> bool:
    """Whether the judge is the generator's own model: with both provenances known, the same
    backend and model; with only the judge's, the configured ``models.text`` (same backend, and
    the same model when the config names one); else from the config alone — ``bench.judge``
    unset (the text role judges) or the same backend, model and path as ``models.text``."""
    if judge and writer:
        return (judge.get("backend"), judge.get("model")) == (writer.get("backend"),
                                                              writer.get("model"))
    configured, text = settings.bench.judge, settings.models.text
    if judge:
        return judge.get("backend") == text.backend and text.model in (None, judge.get("model"))
    if configured is None:
        return True
    return (configured.backend, configured.model, configured.path) == (text.backend, text.model,
                                                                       text.path)


# -- outcomes and accuracy -------------------------------------------------------------------

def outcome(better: float | None, worse: float | None,
            lower_is_better: bool = False) -> float | None:
    """1, 0 or 0.5 (tie) for one pair (module doc); None when either score is missing."""
    if better is None or worse is None or math.isnan(better) or math.isnan(worse):
        return None
    if lower_is_better:
        better, worse = -better, -worse
    return 1.0 if better > worse else 0.0 if better < worse else 0.5


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def accuracy(outcomes: Sequence[float | None], settings: Settings) -> dict[str, Any]:
    """Pairwise accuracy (missing outcomes count 0.5), its seeded bootstrap interval, the
    counts, and the signal flag (low > 0.5)."""
    values = [0.5 if o is None else o for o in outcomes]
    cfg = settings.bench
    found = bootstrap_mean(values, resamples=cfg.bootstrap_resamples, alpha=1 - cfg.confidence,
                           seed=settings.seeds.bench)
    known = [o for o in outcomes if o is not None]
    return {"accuracy": _round(found.mean), "low": _round(found.low), "high": _round(found.high),
            "n": found.n, "correct": known.count(1.0), "wrong": known.count(0.0),
            "ties": known.count(0.5), "failed": len(outcomes) - len(known),
            "signal": bool(found.n and found.low > 0.5),
            "inverted": bool(found.n and found.high < 0.5)}


# -- scoring ---------------------------------------------------------------------------------

class PairScorer:
    """Scores both members of each pair in the pair's context (module doc)."""

    def __init__(self, *, features: ItemFeatures, items: dict[str, dict[str, Any]],
                 users: dict[str, BenchUser], train: dict[str, list[str]], embed: Embedder,
                 judge: Judge, history_items: int, batch: int = 16) -> None:
        self.features, self.items, self.users, self.train = features, items, users, train
        self.embed, self.judge, self.history_items, self.batch = embed, judge, history_items, batch
        self.catalogue = unit_rows(features.matrix)
        self.vectors: dict[str, np.ndarray] = {}

    def score(self, spec: ScorerSpec, pairs: Sequence[Pair]) -> Scores:
        """``(better's score, worse's score)`` per pair; None where there is none."""
        if spec.judge:
            return self._judged(spec.key, pairs)
        self._embed([t for p in pairs for t in (p.better, p.worse)])
        metric = {"text_coherence": self._coherence, "relevance": self._relevance,
                  "objective_novelty": self._novelty}[spec.key]
        return [(metric(p, p.better), metric(p, p.worse)) for p in pairs]

    def _embed(self, texts: list[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if not todo:
            return
        progress = ProgressLog("bench calibrate: embeddings", "texts")
        progress.plan(len(todo))
        for start in range(0, len(todo), 64):
            chunk = todo[start:start + 64]
            self.vectors.update(zip(chunk, self.embed.embed(chunk), strict=True))
            progress(len(chunk))

    def _known(self, ids: list[str], left_out: str | None) -> list[str]:
        return [i for i in ids if i != left_out and i in self.features.index]

    def _coherence(self, pair: Pair, text: str) -> float | None:
        user = self.users[pair.user_id]
        ids = self._known([*user.history, user.target], pair.left_out)
        if not ids:
            return None
        return text_coherence(self.vectors[text],
                              unit_rows(self.features.vectors(ids)).mean(axis=0))

    def _relevance(self, pair: Pair, text: str) -> float | None:
        ids = self._known(self.train.get(pair.user_id, []), pair.left_out)
        if not ids:
            return None
        return relevance(self.vectors[text], self.features.vectors(ids).mean(axis=0))

    def _novelty(self, pair: Pair, text: str) -> float:
        sims = self.catalogue @ unit_rows(self.vectors[text])[0]
        if pair.left_out in self.features.index:
            sims[self.features.index[pair.left_out]] = -np.inf
        return float(np.clip(1.0 - sims.max(), 0.0, 1.0)) if len(sims) else 1.0

    def _history(self, pair: Pair) -> tuple[str, ...]:
        recent = [i for i in self.users[pair.user_id].history[::-1] if i != pair.left_out]
        return tuple(item_title(self.features, self.items, i)
                     for i in recent[: self.history_items])

    def _request(self, key: str, pair: Pair, text: str) -> tuple[str, tuple[str, ...]]:
        if key == "judge_aesthetic":
            return text, ()
        if key == "hallucination":
            return text, tuple(source_line(self.features, self.items, i) for i in pair.sources)
        return text, self._history(pair)

    def _judged(self, key: str, pairs: Sequence[Pair]) -> Scores:
        requests = [self._request(key, p, t) for p in pairs for t in (p.better, p.worse)]
        unique = list(dict.fromkeys(requests))
        progress = ProgressLog(f"bench calibrate: {key}", "answers")
        progress.plan(len(unique))
        answers: dict[tuple[str, tuple[str, ...]], float | None] = {}
        for start in range(0, len(unique), self.batch):
            chunk = unique[start:start + self.batch]
            answers.update(zip(chunk, self._ask(key, chunk), strict=True))
            progress(len(chunk))
        values = [answers[r] for r in requests]
        return list(zip(values[0::2], values[1::2], strict=True))

    def _ask(self, key: str, chunk: list[tuple[str, tuple[str, ...]]]) -> list[float | None]:
        texts, contexts = [r[0] for r in chunk], [list(r[1]) for r in chunk]
        if key == "judge_aesthetic":
            return [s.value for s in self.judge.aesthetic(texts)]
        if key == "hallucination":
            return [None if v.hallucinated is None else float(v.hallucinated)
                    for v in self.judge.hallucination(texts, contexts)]
        ask = self.judge.novelty if key == "judge_novelty" else self.judge.coherence
        return [s.value for s in ask(texts, contexts)]


# -- pairs, summary, file --------------------------------------------------------------------

def build_pairs(root: Path, users: dict[str, BenchUser], features: ItemFeatures,
                items: dict[str, dict[str, Any]], embed: Embedder,
                settings: Settings) -> tuple[dict[str, list[Pair]], dict[str, Any]]:
    """Every dimension's pairs (posts first, then catalogue units) and ``{"posts", "writer"}``."""
    cfg, seed, n = settings.bench, settings.seeds.bench, settings.bench.calibration_pairs
    posts, writer = post_units(root, users, cfg.judge_history_items, seed)
    texts = {i: item_as_post(items[i]) if i in items else features.describe(i) for i in features.ids}
    people = list(users.values())

    def units() -> itertools.chain:
        return itertools.chain(posts, catalogue_units(people, texts, seed))

    def rng(dimension: str) -> np.random.Generator:
        return np.random.default_rng([seed, DIMENSIONS.index(dimension)])

    def source_text(ids: tuple[str, ...]) -> str:
        return "\n".join(source_line(features, items, i) for i in ids)

    pairs = {"coherence": coherence_pairs(units(), n, users, rng("coherence")),
             "novelty": novelty_pairs(units(), n, embed, features, texts),
             "aesthetic": aesthetic_pairs(units(), n, rng("aesthetic")),
             "hallucination": hallucination_pairs(units(), n, FactPool.from_texts(texts),
                                                  source_text, rng("hallucination"))}
    return pairs, {"posts": len(posts), "writer": writer}


def _prompts() -> dict[str, str]:
    folder = resources.files("tailormind.prompts").joinpath("bench")
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir(),
                                                                  key=lambda p: p.name)
            if p.name.startswith("judge_")}


def inputs_hash(pairs: dict[str, list[Pair]], *, judge: TextModel, embed: Embedder,
                features: ItemFeatures, users: dict[str, BenchUser],
                train: dict[str, list[str]], settings: Settings, self_judged: bool) -> str:
    """16 hex digits of sha256 over everything a calibration's numbers depend on."""
    cfg = settings.bench
    used = sorted({p.user_id for found in pairs.values() for p in found})
    payload = {
        "version": VERSION, "self_judged": self_judged, "prompts": _prompts(),
        "pairs": {d: [asdict(p) for p in found] for d, found in pairs.items()},
        "users": {u: [users[u].history, users[u].target, train.get(u, [])] for u in used},
        "judge": [judge.provenance, judge.follows_json, judge.cache_salt],
        "embed": [embed.provenance, embed.cache_salt],
        "features": [features.model, hashlib.sha256(features.matrix.tobytes()).hexdigest(),
                     hashlib.sha256("\n".join(features.descriptions).encode()).hexdigest()],
        "knobs": [cfg.calibration_pairs, cfg.judge_history_items, cfg.bootstrap_resamples,
                  cfg.confidence, settings.seeds.bench],
    }
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def dimension_summary(dimension: str, pairs: list[Pair], scored: dict[str, Scores],
                      judge_label: str, embed_label: str, self_judged: bool,
                      settings: Settings) -> dict[str, Any]:
    """One dimension: its pairs by kind and origin, and each scorer's accuracy (by kind too)."""
    kinds = Counter(p.kind for p in pairs)
    out: dict[str, Any] = {"what": WHAT[dimension], "pairs": len(pairs), "kinds": dict(kinds),
                           "origins": dict(Counter(p.origin for p in pairs)),
                           "short": len(pairs) < settings.bench.calibration_pairs, "scorers": {}}
    for spec in SCORERS[dimension]:
        outcomes = [outcome(b, w, spec.lower_is_better) for b, w in scored[spec.key]]
        entry = {"label": spec.label, "source": judge_label if spec.judge else embed_label,
                 "judge": spec.judge, "self_judged": spec.judge and self_judged,
                 "lower_is_better": spec.lower_is_better, **accuracy(outcomes, settings)}
        if len(kinds) > 1:
            entry["by_kind"] = {kind: accuracy([o for o, p in zip(outcomes, pairs, strict=True)
                                                if p.kind == kind], settings) for kind in kinds}
        out["scorers"][spec.key] = entry
    return out


def _examples(pairs: list[Pair], chars: int = 200) -> list[dict[str, Any]]:
    first = {p.kind: p for p in reversed(pairs)}
    return [{"kind": kind, "better": p.better[:chars], "worse": p.worse[:chars],
             "detail": p.detail} for kind, p in sorted(first.items())]


def _records(pairs: dict[str, list[Pair]],
             scored: dict[str, dict[str, Scores]]) -> list[dict[str, Any]]:
    return [{"dimension": d, "kind": p.kind, "origin": p.origin, "user_id": p.user_id,
             "left_out": p.left_out, "detail": p.detail, "better": p.better[:EXCERPT],
             "worse": p.worse[:EXCERPT], "scores": {k: list(v[i]) for k, v in scored[d].items()}}
            for d, found in pairs.items() for i, p in enumerate(found)]


def _saved(path: Path, digest: str) -> dict[str, Any] | None:
    """The saved calibration of these inputs; None when there is none, it is stale, or it is
    corrupt (then it is recomputed and rewritten: repaired, never trusted)."""
    try:
        saved = read_json_record(path, "calibration")
    except CorruptFileError:
        return None
    if not isinstance(saved, dict) or saved.get("inputs_hash") != digest:
        return None
    saved.pop("pairs", None)
    return saved


def _write(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, data, ensure_ascii=False)


def load_items(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """The catalogue as models see it (tags from the split's leak-free relation)."""
    from tailormind.data.item_tags import model_items

    return {r["item_id"]: r for r in model_items(
        workspace, columns=["item_id", "title", "text", "tags", "image_paths"]).to_pylist()}


def calibrate_workspace(workspace: Workspace, settings: Settings, *,
                        judge_model: TextModel | None = None, embed: Embedder | None = None,
                        features: ItemFeatures | None = None,
                        items: dict[str, dict[str, Any]] | None = None,
                        writer: dict[str, str] | None = None, log: Log = print,
                        reuse: bool = True) -> dict[str, Any]:
    """Build and score the pairs (or reuse ``bench/calibration.json`` when every input is
    unchanged), write that file; the summary (without the per-pair records). ``writer`` is the
    provenance of the model that made the posts (default: from the bundles, else the config)."""
    started = time.perf_counter()
    features = features if features is not None else ItemFeatures.load(workspace)
    items = items if items is not None else load_items(workspace)
    users = {u.user_id: u for u in all_users(workspace)}
    if judge_model is None:
        from tailormind.bench.run import load_judge

        judge_model = load_judge(settings)
    if embed is None:
        from tailormind.models.registry import load_role

        embed = load_role("embed", settings)
    cfg = settings.bench
    log(f"calibration: {cfg.calibration_pairs} pairs per dimension")
    pairs, info = build_pairs(workspace.root, users, features, items, embed, settings)
    self_judged = judge_is_self(settings, judge_model.provenance, writer or info["writer"])
    train = train_histories(workspace, {p.user_id for found in pairs.values() for p in found})
    digest = inputs_hash(pairs, judge=judge_model, embed=embed, features=features, users=users,
                         train=train, settings=settings, self_judged=self_judged)
    path = workspace.root / BENCH_DIR / CALIBRATION_JSON
    saved = _saved(path, digest) if reuse else None
    if saved is not None:
        log(f"calibration: inputs unchanged, reusing {path}")
        return saved
    judge = Judge(judge_model)
    scorer = PairScorer(features=features, items=items, users=users, train=train, embed=embed,
                        judge=judge, history_items=cfg.judge_history_items)
    scored: dict[str, dict[str, Scores]] = {}
    for dimension, found in pairs.items():
        log(f"calibration: {dimension}, {len(found)} pairs")
        scored[dimension] = {s.key: scorer.score(s, found) for s in SCORERS[dimension]}
    summary = summarize(pairs, scored, judge_model=judge_model, embed=embed, info=info,
                        self_judged=self_judged, settings=settings, digest=digest,
                        judge_stats=dict(judge.stats), seconds=time.perf_counter() - started)
    _write(path, {**summary, "pairs": _records(pairs, scored)})
    log(f"calibration written to {path}")
    return summary


def summarize(pairs: dict[str, list[Pair]], scored: dict[str, dict[str, Scores]], *,
              judge_model: TextModel, embed: Embedder, info: dict[str, Any], self_judged: bool,
              settings: Settings, digest: str, judge_stats: dict[str, int],
              seconds: float) -> dict[str, Any]:
    """The calibration's JSON summary (what the report and ``--json`` show)."""
    cfg = settings.bench
    judge_label = judge_source(judge_model.provenance, self_judged)
    embed_label = f"embedding: {embed.provenance.get('model') or embed.provenance.get('backend')}"
    return {
        "title": "TailorBench judge calibration",
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "inputs_hash": digest,
        "seconds": round(seconds, 1), "judge": judge_label, "judge_model": judge_model.provenance,
        "judge_self": self_judged, "embed": embed.provenance,
        "pairs_per_dimension": cfg.calibration_pairs, "seed": settings.seeds.bench,
        "confidence": cfg.confidence, "resamples": cfg.bootstrap_resamples,
        "units": {"posts": info["posts"]}, "rules": RULES,
        "dimensions": {d: dimension_summary(d, pairs[d], scored[d], judge_label, embed_label,
                                            self_judged, settings) for d in DIMENSIONS},
        "judge_stats": judge_stats,
        "examples": {d: _examples(pairs[d]) for d in DIMENSIONS},
    }


def column_signal(calibration: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The calibration of the bench column ``key`` (``{"signal", "accuracy", "low", "high",
    "n", "dimension"}``), or None when it was not calibrated."""
    for dimension, entry in ((calibration or {}).get("dimensions") or {}).items():
        found = entry["scorers"].get(key)
        if found is not None:
            return {"dimension": dimension, "signal": found["signal"],
                    "accuracy": found["accuracy"], "low": found["low"], "high": found["high"],
                    "n": found["n"]}
    return None


def accuracy_cell(entry: dict[str, Any]) -> str:
    """``0.830 [0.770, 0.880]`` with signal; ``no signal (...)`` when the interval includes 0.5
    (or lies below it); ``–`` without pairs."""
    if not entry.get("n") or entry.get("accuracy") is None:
        return "–"
    interval = f"[{entry['low']:.3f}, {entry['high']:.3f}]"
    if entry["signal"]:
        return f"{entry['accuracy']:.3f} {interval}"
    if entry.get("inverted"):
        return f"no signal (inverted: {interval} lies below 0.5)"
    return f"no signal ({interval} includes 0.5)"


def calibration_table(calibration: dict[str, Any] | None) -> list[list[str]]:
    """Rows ``[dimension, scorer, source, accuracy cell, n, ties, failed]``: every scorer of
    every dimension, then its accuracy per kind of pair — what the Markdown, HTML and CLI show."""
    rows: list[list[str]] = []
    for dimension, entry in ((calibration or {}).get("dimensions") or {}).items():
        for scorer in entry["scorers"].values():
            found = [(dimension, scorer)] + [(f"{dimension} · {kind}", by_kind) for kind, by_kind
                                             in (scorer.get("by_kind") or {}).items()]
            rows += [[name, scorer["label"], scorer["source"], accuracy_cell(value),
                      str(value["n"]), str(value["ties"]), str(value["failed"])]
                     for name, value in found]
    return rows
