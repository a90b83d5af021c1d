"""The report's human evaluation: what the raters said (``bench rate``), how far they agree with
each other, and how far the automatic judge agrees with them.

- Per method and dimension: the mean over items of the raters' mean score for the item, with a
  percentile-bootstrap interval over items (``bench.confidence``, ``bench.bootstrap_resamples``,
  seeded by ``seeds.bench``), the number of items, raters and ratings.
- Inter-rater agreement: Krippendorff's α over every rated item (all methods), ordinal for the
  1–5 scales, nominal for hallucination (:mod:`tailormind.core.agreement`).
- Judge–human agreement: Spearman's ρ between the judge's score of a post (``report.json``'s
  ``per_post``) and the raters' mean for it, over the posts that have both, with a bootstrap
  interval over posts. An interval above 0 is evidence that the judge tracks people here; one
  that includes 0 is none.

Only ratings of posts in the report count (a rating of an older report's post is kept in the
store but left out here).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from tailormind.bench import plots
from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.ratings import RATINGS_FILE, Rating, RatingStore
from tailormind.config import Settings
from tailormind.core.agreement import krippendorff_alpha, spearman_interval
from tailormind.core.bootstrap import bootstrap_mean
from tailormind.data.workspace import Workspace

KEY = "human"
#: dimension -> (scale, α level, the judge's per-post column)
DIMENSIONS = {"novelty": ("1–5, higher is more novel", "ordinal", "judge_novelty"),
              "aesthetic": ("1–5, higher is more appealing", "ordinal", "judge_aesthetic"),
              "hallucination": ("0/1, 1: claims the sources do not support", "nominal",
                                "hallucination")}
ItemKey = tuple[str, str]  # (method, user)


def _round(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 6)


def _by_item(ratings: list[Rating], dimension: str) -> dict[ItemKey, dict[str, int]]:
    """(method, user) -> {rater: score}."""
    found: dict[ItemKey, dict[str, int]] = defaultdict(dict)
    for r in ratings:
        found[(r.method, r.user_id)][r.rater] = getattr(r, dimension)
    return found


def _method_means(scores: dict[ItemKey, dict[str, int]], methods: list[str],
                  settings: Settings) -> dict[str, dict[str, Any]]:
    cfg = settings.bench
    out = {}
    for method in methods:
        mine = {k: v for k, v in scores.items() if k[0] == method}
        found = bootstrap_mean([np.mean(list(v.values())) for v in mine.values()],
                               resamples=cfg.bootstrap_resamples, alpha=1 - cfg.confidence,
                               seed=settings.seeds.bench)
        out[method] = {"mean": _round(found.mean), "low": _round(found.low),
                       "high": _round(found.high), "n": found.n,
                       "raters": len({r for v in mine.values() for r in v}),
                       "ratings": sum(len(v) for v in mine.values())}
    return out


def _judge_agreement(scores: dict[ItemKey, dict[str, int]], per_post: list[dict[str, Any]],
                     column: str, settings: Settings) -> dict[str, Any]:
    judge = {(r["method"], r["user_id"]): r.get(column) for r in per_post}
    pairs = [(judge[k], float(np.mean(list(v.values())))) for k, v in sorted(scores.items())
             if judge.get(k) is not None]
    cfg = settings.bench
    found = spearman_interval([p[0] for p in pairs], [p[1] for p in pairs],
                              resamples=cfg.bootstrap_resamples, alpha=1 - cfg.confidence,
                              seed=settings.seeds.bench)
    return {"metric": column, **{k: _round(v) if k != "n" else v
                                 for k, v in found.as_dict().items()}}


def _dimension(ratings: list[Rating], name: str, report: dict[str, Any],
               settings: Settings) -> dict[str, Any]:
    scale, level, column = DIMENSIONS[name]
    scores = _by_item(ratings, name)
    alpha = krippendorff_alpha([list(v.values()) for v in scores.values()], level)  # type: ignore[arg-type]
    return {"scale": scale,
            "methods": _method_means(scores, [m["name"] for m in report["methods"]], settings),
            "alpha": {"value": _round(alpha), "level": level,
                      "units": sum(1 for v in scores.values() if len(v) >= 2)},
            "judge": _judge_agreement(scores, report["per_post"], column, settings)}


def build(workspace: Workspace, settings: Settings, report: dict[str, Any]) -> dict[str, Any]:
    """The section's numbers (``ratings: 0`` and nothing else before anyone has rated)."""
    path = workspace.root / BENCH_DIR / RATINGS_FILE
    posts = {(r["method"], r["user_id"]) for r in report["per_post"]}
    ratings = [r for r in RatingStore(path).ratings() if (r.method, r.user_id) in posts] \
        if path.is_file() else []
    section: dict[str, Any] = {"ratings": len(ratings), "posts": len(posts),
                               "posts_rated": len({(r.method, r.user_id) for r in ratings}),
                               "raters": sorted({r.rater for r in ratings}),
                               "confidence": settings.bench.confidence,
                               "resamples": settings.bench.bootstrap_resamples,
                               "seed": settings.seeds.bench}
    if ratings:
        section["dimensions"] = {name: _dimension(ratings, name, report, settings)
                                 for name in DIMENSIONS}
    return section


def _cell(entry: dict[str, Any]) -> str:
    if entry["mean"] is None:
        return "–"
    return (f"{entry['mean']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}] "
            f"n={entry['n']} · {entry['raters']} rater(s)")


def _rho(entry: dict[str, Any]) -> str:
    if entry["rho"] is None:
        return f"– (n={entry['n']}: needs 3 posts and varying scores)"
    interval = "" if entry["low"] is None else f" [{entry['low']:+.3f}, {entry['high']:+.3f}]"
    return f"{entry['rho']:+.3f}{interval} n={entry['n']}"


def verdict(entry: dict[str, Any]) -> str:
    """What the judge–human ρ says."""
    if entry["rho"] is None or entry["low"] is None:
        return "not enough data"
    if entry["low"] > 0:
        return "the judge agrees with the raters"
    if entry["high"] < 0:
        return "the judge disagrees with the raters"
    return "no evidence the judge agrees (interval includes 0)"


def rows(section: dict[str, Any], report: dict[str, Any]) -> dict[str, list[list[str]]]:
    """The section's tables as text cells: ``means`` (method × dimension) and ``agreement``
    (dimension, α, judge–human ρ, verdict) — Markdown and HTML show exactly these."""
    labels = {m["name"]: m["label"] for m in report["methods"]}
    dims = section.get("dimensions") or {}
    means = [[labels[m], *(_cell(dims[d]["methods"][m]) for d in dims)]
             for m in labels] if dims else []
    agreement = [[d, dims[d]["scale"],
                  "–" if dims[d]["alpha"]["value"] is None
                  else f"{dims[d]['alpha']['value']:.3f} ({dims[d]['alpha']['level']}, "
                       f"{dims[d]['alpha']['units']} posts with 2+ ratings)",
                  f"{_rho(dims[d]['judge'])} vs {dims[d]['judge']['metric']}",
                  verdict(dims[d]["judge"])] for d in dims]
    return {"means": means, "agreement": agreement}


def summary(section: dict[str, Any]) -> str:
    return (f"{section['ratings']} ratings by {len(section['raters'])} rater(s) of "
            f"{section['posts_rated']} of {section['posts']} posts; means over posts of the "
            f"raters' mean, {section['confidence']:.0%} bootstrap intervals over posts "
            f"(B = {section['resamples']}, seed {section['seed']}).")


def markdown(section: dict[str, Any], report: dict[str, Any]) -> list[str]:
    lines = ["## Human evaluation", ""]
    if not section["ratings"]:
        return lines + ["No ratings yet: `tailormind bench rate --workspace "
                        f"{report['workspace']}` serves the blind rating page.", ""]
    tables = rows(section, report)
    dims = list(section["dimensions"])
    lines += [summary(section), "", "| method | " + " | ".join(dims) + " |",
              "|---|" + "---|" * len(dims)]
    lines += ["| " + " | ".join(row) + " |" for row in tables["means"]]
    lines += ["", "| dimension | scale | Krippendorff's α | judge–human Spearman ρ | verdict |",
              "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in tables["agreement"]]
    return lines + [""]


def figures(section: dict[str, Any], report: dict[str, Any]) -> dict[str, bytes | None]:
    if not section["ratings"]:
        return {}
    labels = {m["name"]: m["label"] for m in report["methods"]}
    panels = [{"title": f"Human {name} ({entry['scale']})",
               "bars": [{"label": labels[m], **v} for m, v in entry["methods"].items()]}
              for name, entry in section["dimensions"].items()]
    return {"human_means": plots.dimension_bars(panels, section["confidence"])}


TEMPLATE_GLOBALS = {"human_rows": rows, "human_summary": summary}
