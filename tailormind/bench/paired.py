r"""Every comparison of the TailorBench report as a paired difference over the same users.

For methods a (TailorMind) and b and one metric, with x_u and y_u the per-user values of the U
users that have both: the difference is mean_u(x_u − y_u) and its interval the paired percentile
bootstrap of that mean (:func:`~tailormind.core.bootstrap.paired_difference`: users resampled
together, ``bench.bootstrap_resamples``, ``bench.confidence``, seeded by ``seeds.bench``); wins,
losses and ties count the users where x > y, x < y, x = y.

* Content: TailorMind against every other method (the ablations and the ground-truth UGC) on each
  measured per-post column. A judge column whose calibration has no signal keeps its numbers here
  with ``"signal": false`` and is shown as "no signal".
* Profiling: the hybrid with vs without the profile signal, the refined vs the initial profile,
  and TailorMind against w/o CF, profile-free, popularity and each CF model (Recall/NDCG@K).
"""

from __future__ import annotations

import math
from typing import Any

from tailormind.core.bootstrap import paired_difference
from tailormind.config import Settings

#: (a, b, what the difference says), profiling rows of :mod:`profiling_dimension`.
PROFILING_PAIRS = (
    ("tailormind_hybrid", "hybrid_no_profile", "what the profile adds to the hybrid reranker"),
    ("tailormind", "no_refinement", "refined − initial profile (what refinement adds)"),
    ("tailormind", "no_cf", "TailorMind − w/o CF"),
    ("tailormind", "profile_free", "TailorMind − profile-free (history content)"),
    ("tailormind_hybrid", "popularity", "TailorMind (hybrid) − popularity"),
)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def paired_entry(a_values: dict[str, float], b_values: dict[str, float], settings: Settings, *,
                 a: str, b: str, metric: str, **labels: Any) -> dict[str, Any]:
    """The paired difference a − b over the users both have (sorted ids), as JSON data."""
    users = sorted(set(a_values) & set(b_values))
    cfg = settings.bench
    found = paired_difference([a_values[u] for u in users], [b_values[u] for u in users],
                              a=a, b=b, metric=metric, resamples=cfg.bootstrap_resamples,
                              alpha=1 - cfg.confidence, seed=settings.seeds.bench)
    return {**labels, **{k: _finite(v) for k, v in found.as_dict().items()}, "users": users}


def _by_user(rows: list[dict[str, Any]], method: str, key: str) -> dict[str, float]:
    return {r["user_id"]: float(r[key]) for r in rows
            if r["method"] == method and r.get(key) is not None}


def paired_content(rows: list[dict[str, Any]], methods: list[Any],
                   metrics: dict[str, list[Any]], settings: Settings) -> list[dict[str, Any]]:
    """TailorMind − each other method, per measured content column (module doc)."""
    labels = {m.name: m.label for m in methods}
    if "tailormind" not in labels:
        return []
    out = []
    for dimension, columns in metrics.items():
        for column in columns:
            if not column.measured:
                continue
            mine = _by_user(rows, "tailormind", column.key)
            signal = (column.calibration or {}).get("signal") if column.judge else None
            for other in (m for m in methods if m.name != "tailormind"):
                out.append(paired_entry(
                    mine, _by_user(rows, other.name, column.key), settings, a="tailormind",
                    b=other.name, metric=column.key, dimension=dimension, label=column.label,
                    source=column.source, a_label=labels["tailormind"], b_label=other.label,
                    lower_is_better=column.lower_is_better, signal=signal))
    return out


def paired_profiling(profile_rows: list[dict[str, Any]], metrics: tuple[str, ...],
                     settings: Settings) -> list[dict[str, Any]]:
    """The profiling comparisons of :data:`PROFILING_PAIRS` (+ hybrid − each CF model)."""
    rows = {r["method"]: r for r in profile_rows}
    pairs = list(PROFILING_PAIRS) + [("tailormind_hybrid", m, f"TailorMind (hybrid) − {m}")
                                     for m in rows if m.startswith("cf:")]
    out = []
    for a, b, what in pairs:
        if a not in rows or b not in rows:
            continue
        for metric in metrics:
            values = [dict(zip(rows[m]["user_ids"], rows[m]["values"][metric], strict=True))
                      for m in (a, b)]
            out.append(paired_entry(values[0], values[1], settings, a=a, b=b, metric=metric,
                                    dimension="profiling", label=metric, what=what,
                                    source="ranking of the 1:99 test candidate sets",
                                    a_label=rows[a]["label"], b_label=rows[b]["label"],
                                    lower_is_better=False, signal=None))
    return out


def paired_cell(entry: dict[str, Any]) -> str:
    """``+0.050 [+0.010, +0.090]``; ``no signal`` for an uncalibrated judge; ``–`` for n = 0."""
    if entry.get("difference") is None:
        return "–"
    if entry.get("signal") is False:
        return "no signal"
    return f"{entry['difference']:+.3f} [{entry['low']:+.3f}, {entry['high']:+.3f}]"


def paired_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per dimension: ``{"dimension", "rows": [[metric, source, comparison, cell, n,
    wins/losses/ties, interval excludes 0]]}`` — what the Markdown and the HTML show."""
    groups: dict[str, list[list[str]]] = {}
    paired = report.get("paired") or {}
    for entry in [*paired.get("content", []), *paired.get("profiling", [])]:
        hidden = entry.get("signal") is False or entry.get("difference") is None
        better = "lower is better" if entry.get("lower_is_better") else ""
        groups.setdefault(entry["dimension"], []).append([
            entry["label"] + (f" ({better})" if better else ""), entry["source"],
            f"{entry['a_label']} − {entry['b_label']}", paired_cell(entry), str(entry["n"]),
            f"{entry['wins']}/{entry['losses']}/{entry['ties']}",
            "–" if hidden else ("yes" if entry["excludes_zero"] else "no")])
    return [{"dimension": name, "rows": rows} for name, rows in groups.items()]
