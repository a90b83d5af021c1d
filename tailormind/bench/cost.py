"""The cost study (paper RQ5), a report section (:mod:`tailormind.bench.report_sections`): for
every method and stage, per user (profiling) and per post (generation, judging), the LLM tokens,
model-seconds (time inside model backends), wall seconds (elapsed stage time) and GPU-seconds —
as reported where a model ran on a CUDA device, and always an **estimate** from the LLM tokens
and ``bench.cost_tokens_per_gpu_second`` (an assumed throughput, not a measurement).

It reads what the workspace recorded; no model is called:

- profiling, per user: the method's profiles table (``profiles``; ``profiles__nocf`` for w/o CF).
  Iteration 0 of a row's ``iterations`` is the initialisation with its first ranking (its tokens
  and seconds are the row's total minus iterations ≥ 1, which also holds for rows written before
  iteration 0 carried them); iterations ≥ 1 are the refinement (rank, critique, update). Tokens
  and elapsed seconds are each user's share of the batched steps; model and GPU seconds come from
  the iterations' ``model_seconds``/``gpu_seconds``, absent before they were recorded.
- generation, per post: each scored post's ``post.json`` (``seconds_by_stage``,
  ``tokens_by_stage``, ``model_seconds_by_stage``, ``gpu_seconds_by_stage``; a post written
  before schema version 3 has no model seconds).
- judging (and the embedding/CLIP scoring), per post: ``bench/scoring_cost.json``, written by
  ``bench run`` while it scores (:func:`measured`): that run's calls, so call-cache hits cost
  nothing (counted beside the row); the file of another set of users is ignored.

Every number is a cell ``{"mean", "total", "n", "not_recorded"}``: the mean over the ``n`` units
that recorded it, their total, and how many units in scope did not record it — a value that was
not recorded is never counted as 0. The ground truth makes nothing (no generation cost, shown as
such); the profile-free method has no profiling (one fixed profile); w/o RAG and w/o reflection
read TailorMind's profiles, so their profiling rows are the same users' rows (not paid again).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tailormind.bench import plots  # noqa: F401  (selects matplotlib's Agg backend)
from tailormind.bench.methods import BENCH_DIR, METHODS
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record, write_json_atomic
from tailormind.data.workspace import Workspace
from tailormind.generation.bundle import read_post
from tailormind.generation.post_record import PostRecord
from tailormind.models.roles import Role, any_on_gpu, busy_meter

KEY = "cost"
#: Written by ``bench run`` beside the report: what scoring each method's posts cost.
SCORING_COST = "scoring_cost.json"
FIGURE = "cost_by_stage"
METRICS = ("llm_tokens", "model_seconds", "wall_seconds", "gpu_seconds", "gpu_seconds_estimate")
#: The generator's clock labels (``generation.steps``), in order; others follow sorted.
GENERATION_STAGES = ("inputs", "exemplars", "ideate", "writing", "images", "scoring", "media",
                     "bundle")
STAGE_LABELS = {
    "profiling_init": "profiling: initialisation (+ first ranking)",
    "profiling_refine": "profiling: refinement (critique, update, rank)",
    "inputs": "generation: inputs", "exemplars": "generation: exemplars (RAG)",
    "ideate": "generation: ideation", "writing": "generation: writing (draft + revisions)",
    "images": "generation: images (every round)", "scoring": "generation: reflection scoring",
    "media": "generation: video", "bundle": "generation: bundle",
    "judging": "bench: judging and scoring", "total": "total: profiling + generation",
}
T = TypeVar("T")
Unit = dict[str, float | None]  # metric -> value of one user or post (None: not recorded)


def cell(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean and total over the recorded values, ``n`` of them, and how many were not recorded."""
    values = list(values)
    found = [float(v) for v in values if v is not None]
    total = round(sum(found), 6) if found else None
    return {"mean": round(sum(found) / len(found), 6) if found else None, "total": total,
            "n": len(found), "not_recorded": len(values) - len(found)}


def estimate(tokens: float | None, throughput: float) -> float | None:
    """GPU-seconds estimated from LLM tokens at ``throughput`` tokens per GPU-second."""
    return None if tokens is None else tokens / throughput


def stage(key: str, per: str, units: Mapping[str, Unit], throughput: float,
          note: str = "") -> dict[str, Any]:
    """One row: every metric's cell over ``units`` (user or post id -> values); the estimate is
    derived from each unit's tokens."""
    rows = [{**u, "gpu_seconds_estimate": estimate(u.get("llm_tokens"), throughput)}
            for u in units.values()]
    return {"key": key, "label": STAGE_LABELS.get(key, f"generation: {key}"), "per": per,
            "units": len(rows), "note": note,
            **{m: cell(r.get(m) for r in rows) for m in METRICS}}


# -- profiling --------------------------------------------------------------------------------
def _summed(steps: list[dict[str, Any]], key: str) -> float | None:
    """Sum of ``key`` over the iterations; None when one lacks it (recorded before it existed)."""
    values = [s.get(key) for s in steps]
    return None if any(v is None for v in values) else float(sum(values))


def profile_units(row: Mapping[str, Any]) -> tuple[Unit, Unit]:
    """(initialisation, refinement) of one profiles row: tokens and wall seconds split by
    iteration (initialisation = the row's total − iterations ≥ 1); model and GPU seconds only
    when iteration 0 recorded them (GPU: only when a model ran on a GPU)."""
    steps = json.loads(row["iterations"] or "[]")
    refine = [s for s in steps if s.get("iteration", 0) >= 1]
    first = next((s for s in steps if s.get("iteration", 0) == 0), {})
    refine_tokens = float(sum(s.get("prompt_tokens", 0) + s.get("completion_tokens", 0)
                              for s in refine))
    refine_wall = float(sum(s.get("seconds", 0.0) for s in refine))
    init: Unit = {"llm_tokens": row["prompt_tokens"] + row["completion_tokens"] - refine_tokens,
                  "wall_seconds": row["seconds"] - refine_wall}
    later: Unit = {"llm_tokens": refine_tokens, "wall_seconds": refine_wall}
    for key in ("model_seconds", "gpu_seconds"):
        recorded = first.get(key) is not None
        init[key] = float(first[key]) if recorded else None
        later[key] = _summed(refine, key) if recorded else None
    return init, later


def profiling_stages(workspace: Workspace, table: str,
                     users: list[str]) -> dict[str, dict[str, Unit]]:
    """``{"profiling_init": {user: unit}, "profiling_refine": ...}``; a user without a row in
    ``table`` has every value not recorded."""
    rows: dict[str, Mapping[str, Any]] = {}
    if workspace.has(table):
        columns = ["user_id", "iterations", "prompt_tokens", "completion_tokens", "seconds"]
        rows = {r["user_id"]: r for r in workspace.read(table, columns=columns).to_pylist()}
    empty: Unit = dict.fromkeys(("llm_tokens", "model_seconds", "wall_seconds", "gpu_seconds"))
    split = {u: profile_units(rows[u]) if u in rows else (empty, empty) for u in users}
    return {"profiling_init": {u: s[0] for u, s in split.items()},
            "profiling_refine": {u: s[1] for u, s in split.items()}}


# -- generation -------------------------------------------------------------------------------
def post_unit(record: PostRecord | None, key: str) -> Unit:
    """One post's values for the clock label ``key`` (all None without a record)."""
    if record is None:
        return dict.fromkeys(("llm_tokens", "model_seconds", "wall_seconds", "gpu_seconds"))
    model, gpu = record.model_seconds_by_stage, record.gpu_seconds_by_stage
    return {"llm_tokens": float(record.tokens_by_stage.get(key, 0)),  # only LLM steps listed
            "wall_seconds": record.seconds_by_stage.get(key),
            "model_seconds": None if model is None else model.get(key),
            "gpu_seconds": None if gpu is None else gpu.get(key)}


def generation_stages(records: Mapping[str, PostRecord | None]) -> dict[str, dict[str, Unit]]:
    """Clock label -> {user: unit} over the posts (``records``: user -> post.json)."""
    seen = {k for r in records.values() if r is not None for k in r.seconds_by_stage}
    keys = [k for k in GENERATION_STAGES if k in seen] + sorted(seen - set(GENERATION_STAGES))
    return {k: {u: post_unit(r, k) for u, r in records.items()} for k in keys}


def method_posts(workspace: Workspace, report: Mapping[str, Any],
                 method: str) -> dict[str, PostRecord | None]:
    """User -> ``post.json`` of ``method``'s scored posts (None: the bundle is gone)."""
    return {r["user_id"]: read_post(workspace.root / r["path"]) for r in report["per_post"]
            if r["method"] == method and r.get("path")}


def total_units(stages: Mapping[str, Mapping[str, Unit]], users: Iterable[str]) -> dict[str, Unit]:
    """Per user, each metric summed over ``stages``; None when a stage did not record it."""
    out: dict[str, Unit] = {}
    for user in users:
        parts = [found.get(user) for found in stages.values()]
        out[user] = {m: None if any(p is None or p.get(m) is None for p in parts)
                     else float(sum(p[m] for p in parts))  # type: ignore[index, misc]
                     for m in ("llm_tokens", "model_seconds", "wall_seconds", "gpu_seconds")}
    return out


# -- judging ----------------------------------------------------------------------------------
def measured(roles: Iterable[Role | None], work: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """Run ``work``; its result and what it cost in ``roles``: wall seconds, fresh LLM tokens,
    model seconds, GPU seconds (None when no role runs on a GPU), answers and call-cache hits."""
    chosen = list({id(r): r for r in roles if r is not None}.values())
    meter = busy_meter(chosen)
    keys = ("prompt_tokens", "completion_tokens", "calls", "cache_hits")
    before = [sum(r.stats[k] for r in chosen) for k in keys]
    (busy, gpu), started = meter(), time.perf_counter()
    result = work()
    wall, (busy_after, gpu_after) = time.perf_counter() - started, meter()
    after = [sum(r.stats[k] for r in chosen) for k in keys]
    delta = dict(zip(keys, (a - b for a, b in zip(after, before, strict=True)), strict=True))
    return result, {"wall_seconds": wall, "model_seconds": busy_after - busy,
                    "gpu_seconds": gpu_after - gpu if any_on_gpu(chosen) else None,
                    "llm_tokens": delta["prompt_tokens"] + delta["completion_tokens"],
                    "answers": delta["calls"], "cache_hits": delta["cache_hits"]}


def write_scoring_cost(bench_dir: Path, users: list[str], methods: dict[str, Any]) -> None:
    """``bench/scoring_cost.json``: per method, ``posts`` and the :func:`measured` totals."""
    write_json_atomic(bench_dir / SCORING_COST, {"users": users, "methods": methods})


def scoring_costs(bench_dir: Path, users: list[str]) -> dict[str, Any]:
    """Method -> its entry of :data:`SCORING_COST`; empty when the file is absent or was
    written for other users (another run's)."""
    found = read_json_record(bench_dir / SCORING_COST, SCORING_COST)
    return found["methods"] if found and found.get("users") == users else {}


def judging_stage(entry: Mapping[str, Any] | None, throughput: float) -> dict[str, Any] | None:
    """The judging row from a method's :data:`SCORING_COST` entry (totals over its posts);
    None without an entry or posts."""
    if not entry or not entry["posts"]:
        return None
    n = entry["posts"]
    cells = {m: _totals_cell(entry.get(m), n)
             for m in ("llm_tokens", "model_seconds", "wall_seconds", "gpu_seconds")}
    return {"key": "judging", "label": STAGE_LABELS["judging"], "per": "post", "units": n,
            "note": f"this run's calls: {entry['cache_hits']} of {entry['answers']} model calls "
                    "came from the call cache (free)",
            **cells, "gpu_seconds_estimate": _totals_cell(
                estimate(entry["llm_tokens"], throughput), n)}


def _totals_cell(total: float | None, n: int) -> dict[str, Any]:
    """A cell known only by its total over ``n`` units (None: not recorded for any)."""
    if total is None:
        return {"mean": None, "total": None, "n": 0, "not_recorded": n}
    return {"mean": round(total / n, 6), "total": round(float(total), 6), "n": n,
            "not_recorded": 0}


# -- the section ------------------------------------------------------------------------------
def method_note(name: str) -> str:
    """What a method does not cost, by construction ("" for the others)."""
    method = METHODS[name]
    if not method.generates:
        return "no generation cost: the held-out test item, as written"
    if method.fixed_profile:
        return "no profiling cost: one fixed generic profile for every user"
    return ""


def generation_rows(workspace: Workspace, report: Mapping[str, Any], name: str,
                    throughput: float) -> list[dict[str, Any]]:
    """A generating method's rows: profiling (per user; none with a fixed profile), its posts'
    stages (per post) and, when it has posts, their total per user."""
    method = METHODS[name]
    groups: dict[str, dict[str, Unit]] = {}
    if not method.fixed_profile:
        groups.update(profiling_stages(workspace, method.profiles_table, list(report["users"])))
    posts = method_posts(workspace, report, name)
    made = generation_stages(posts)
    groups.update(made)
    rows = [stage(k, "user" if k.startswith("profiling") else "post", v, throughput)
            for k, v in groups.items()]
    return rows + ([stage("total", "user", total_units(groups, posts), throughput)]
                   if made else [])


def build(workspace: Workspace, settings: Settings, report: dict[str, Any]) -> dict[str, Any]:
    """The section: the throughput behind the estimate, and per method (in the report's order)
    its note and stage rows — profiling, generation, their total per user, judging."""
    throughput = settings.bench.cost_tokens_per_gpu_second
    scoring = scoring_costs(workspace.root / BENCH_DIR, list(report["users"]))
    methods = []
    for entry in report["methods"]:
        name = entry["name"]
        rows = (generation_rows(workspace, report, name, throughput)
                if METHODS[name].generates else [])
        judged = judging_stage(scoring.get(name), throughput)
        methods.append({"name": name, "label": entry["label"], "note": method_note(name),
                        "generates": METHODS[name].generates,
                        "stages": rows + ([judged] if judged else [])})
    section = {"tokens_per_gpu_second": throughput, "methods": methods, "notes": list(NOTES)}
    section["table"] = table(section)
    return section


NOTES = (
    "Model-seconds: time inside model backends (call-cache hits cost nothing); wall seconds: "
    "elapsed stage time; profiling numbers are each user's equal share of the batched steps.",
    "GPU-seconds (reported): measured where a model ran on a CUDA device (none on a CPU-only "
    "run: \"not reported\"). GPU-seconds (estimate): LLM tokens ÷ bench.cost_tokens_per_gpu_"
    "second, an assumed throughput, not a measurement; image, video and embedding work is not "
    "in it.",
    "w/o RAG and w/o reflection read TailorMind's profiles: their profiling rows are the same "
    "users' rows, paid once.",
    "Profiling tokens are the profile, critique and update answers; with profiling.ranker = llm "
    "the ranking answers' tokens are not in them (their time is).",
    "\"not recorded\": the record predates that number (a post.json before schema version 3, a "
    "profile before model seconds were kept, a report without bench/scoring_cost.json).",
)
COLUMNS = ("method", "stage", "per", "n", "LLM tokens", "model-s", "wall-s", "GPU-s (reported)",
           "GPU-s estimate (tokens ÷ {throughput:g} tok/s)")


def cost_cell(found: dict[str, Any], digits: int, missing: str = "not recorded") -> str:
    """``mean (Σ total)``, with how many units did not record it; ``missing`` when none did."""
    if found["n"] == 0:
        return missing if found["not_recorded"] else "–"
    text = f"{found['mean']:.{digits}f} (Σ {found['total']:.{digits}f}"
    return text + (f"; {found['not_recorded']} not recorded)" if found["not_recorded"] else ")")


def table(section: Mapping[str, Any]) -> dict[str, Any]:
    """What the Markdown and the HTML show: ``{"columns", "rows": [[str, ...]]}``."""
    columns = [c.format(throughput=section["tokens_per_gpu_second"]) for c in COLUMNS]
    rows: list[list[str]] = []
    for method in section["methods"]:
        if method["note"]:
            rows.append([method["label"], method["note"]] + ["–"] * (len(columns) - 2))
        for row in method["stages"]:
            label = row["label"] + (f" ({row['note']})" if row["note"] else "")
            rows.append([method["label"], label, row["per"], str(row["units"]),
                         cost_cell(row["llm_tokens"], 0), cost_cell(row["model_seconds"], 3),
                         cost_cell(row["wall_seconds"], 3),
                         cost_cell(row["gpu_seconds"], 3, "not reported"),
                         cost_cell(row["gpu_seconds_estimate"], 3)])
    return {"columns": columns, "rows": rows}


def markdown(section: dict[str, Any], report: dict[str, Any]) -> list[str]:
    """The section's Markdown: the table, the notes and the plot."""
    found = section["table"]
    lines = ["## Cost (RQ5)", "",
             "Mean per user (profiling, and the total of profiling + generation) or per post "
             "(generation stages, judging), with the total Σ over the n units.", "",
             "| " + " | ".join(found["columns"]) + " |", "|" + "---|" * len(found["columns"])]
    lines += ["| " + " | ".join(row) + " |" for row in found["rows"]]
    lines += [""] + [f"- {note}" for note in section["notes"]] + [""]
    if _bars(section):
        lines += [f"![{FIGURE}](plots/{FIGURE}.png)", ""]
    return lines


def _bars(section: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Metric -> method label -> stage label -> mean (rows with a mean; totals left out)."""
    out: dict[str, dict[str, dict[str, float]]] = {"wall_seconds": {}, "llm_tokens": {}}
    for method in section["methods"]:
        for row in method["stages"]:
            for metric, found in out.items():
                if row["key"] != "total" and row[metric]["mean"] is not None:
                    found.setdefault(method["label"], {})[row["label"]] = row[metric]["mean"]
    return {k: v for k, v in out.items() if v}


PANELS = (("wall_seconds", "Mean wall seconds per user / post, by stage"),
          ("llm_tokens", "Mean LLM tokens per user / post, by stage"))


def figures(section: dict[str, Any], report: dict[str, Any]) -> dict[str, bytes | None]:
    """One figure: per method, stacked bars of the mean wall seconds and LLM tokens by stage
    (None when no row has a mean)."""
    found = _bars(section)
    return {FIGURE: _stacked([(title, found[key]) for key, title in PANELS if key in found])
            if found else None}


def _stacked(panels: list[tuple[str, dict[str, dict[str, float]]]]) -> bytes:
    """PNG: one panel per (title, method -> stage -> value), a stacked bar per method."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, bars) in zip(axes.flat, panels, strict=True):
        methods = list(bars)
        stages = list(dict.fromkeys(s for found in bars.values() for s in found))
        bottom = [0.0] * len(methods)
        for i, name in enumerate(stages):
            heights = [bars[m].get(name, 0.0) for m in methods]
            ax.bar(range(len(methods)), heights, bottom=bottom, label=name,
                   color=plt.get_cmap("tab20")(i % 20))
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    axes.flat[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Cost (RQ5)", fontsize=10)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
