"""The report's "Sensitivity" section (the paper's RQ4), from ``bench/sweep.json`` that
``tailormind bench sweep`` (:mod:`tailormind.bench.sweep`) writes.

Per swept parameter: a table with a row per value (what the value re-ran, seconds, and each
dimension metric's mean with its bootstrap interval and n, as the report's other tables show
them) and a plot with one panel per metric, the value on x and the mean with its interval as
error bars, the configured value dotted. The columns are the report's: labelled by what made
them, judge columns "(self-judged)" and "no signal" (not plotted) as the judge's calibration
says; the profiling metrics appear for ``profiling.*`` parameters only (the others reuse the
main profiles). A parameter swept under another configuration than the current one is flagged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tailormind.bench import plots, report_sections
from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.report import (
    PLOTS_DIR,
    PROFILING_METRICS,
    REPORT_JSON,
    cell,
    content_metrics,
    write_report,
)
from tailormind.bench.sweep import load_sweep
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record, write_bytes_atomic
from tailormind.data.workspace import Workspace

KEY = "sensitivity"
PROFILE_SOURCE = "refined profile (cosine) on the 1:99 test candidate sets"


def plot_name(path: str) -> str:
    """``profiling.n_max`` -> ``sensitivity_profiling_n_max`` (``plots/<name>.png``)."""
    return "sensitivity_" + re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")


def _columns(models: dict[str, Any], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured column, as the report labels it, then the profiling metrics."""
    found = []
    table = content_metrics(models, bool(report.get("judge_self")), report.get("calibration"))
    for dimension, metrics in table.items():
        for m in (m for m in metrics if m.measured):
            signal = m.calibration["signal"] if m.judge and m.calibration else None
            found.append({"key": m.key, "label": m.label, "source": m.source,
                          "dimension": dimension, "signal": signal})
    return found + [{"key": k, "label": k.replace("recall", "Recall").replace("ndcg", "NDCG"),
                     "source": PROFILE_SOURCE, "dimension": "profiling", "signal": None}
                    for k in PROFILING_METRICS]


def stages_text(value: dict[str, Any]) -> str:
    """What a value ran now (``2 users profiled, 1 post made, 1 post scored``) or
    ``reused``."""
    if value.get("reused"):
        return "reused (inputs unchanged)"
    stages = value["stages"]
    counts = ((stages["profiles"]["profiled_now"], "user profiled", "users profiled"),
              (stages["posts"]["made_now"], "post made", "posts made"),
              (stages["scores"]["scored_now"], "post scored", "posts scored"))
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts if n) or "reused"


def _cell(value: dict[str, Any], column: dict[str, Any]) -> str:
    entry = value["metrics"].get(column["key"])
    if entry and column["signal"] is False:
        entry = {**entry, "signal": False}
    return cell(entry)


def _param(entry: dict[str, Any], columns: list[dict[str, Any]], base: str) -> dict[str, Any]:
    values = entry["values"]
    shown = [c for c in columns if any((v["metrics"].get(c["key"]) or {}).get("n")
                                       for v in values)]
    configured = next((i for i, v in enumerate(values) if v["configured"]), None)
    stale = entry["base_config"] != base
    return {
        "path": entry["path"], "configured_label": entry["configured_label"],
        "stale": stale, "note": stale_note(entry["path"]) if stale else "",
        "users": len(entry["users"]),
        "plot": plot_name(entry["path"]), "columns": shown,
        "header": ["value", "re-run", "seconds", *(c["label"] for c in shown)],
        "rows": [[v["label"] + (" (configured)" if v["configured"] else ""), stages_text(v),
                  f"{v['seconds']:.1f}", *(_cell(v, c) for c in shown)] for v in values],
        "curve": {"values": [v["value"] for v in values], "labels": [v["label"] for v in values],
                  "configured": configured,
                  "panels": [{"title": f"{c['label'][:46]}\n({c['source'][:46]})",
                              "points": [v["metrics"][c["key"]] for v in values]}
                             for c in shown if c["signal"] is not False]},
    }


def build(workspace: Workspace, settings: Settings, report: dict[str, Any]
          ) -> dict[str, Any] | None:
    """The section from ``bench/sweep.json`` (None when nothing was swept)."""
    doc = load_sweep(workspace)
    if not doc or not doc.get("params"):
        return None
    columns = _columns(doc.get("models") or report.get("models") or {}, report)
    base = settings.config_hash()
    section = {"confidence": doc["confidence"], "resamples": doc["resamples"],
               "seed": doc["seed"], "updated": doc["updated"],
               "params": [_param(p, columns, base) for p in doc["params"].values()]}
    return {**section, "intro": intro(section)}


def markdown(section: dict[str, Any], report: dict[str, Any]) -> list[str]:
    lines = ["## Sensitivity (one factor at a time)", "", section["intro"], ""]
    for param in section["params"]:
        lines += [f"### {param['path']} (configured: {param['configured_label']}; "
                  f"{param['users']} users)", ""]
        if param["note"]:
            lines += [f"- {param['note']}", ""]
        lines += [f"- **{c['label']}** — {c['source']}" for c in param["columns"]] + [""]
        lines += ["| " + " | ".join(param["header"]) + " |",
                  "|" + "---|" * len(param["header"])]
        lines += ["| " + " | ".join(row) + " |" for row in param["rows"]]
        lines += ["", f"![sensitivity: {param['path']}]({PLOTS_DIR}/{param['plot']}.png)", ""]
    return lines


def intro(section: dict[str, Any]) -> str:
    return (f"TailorMind on the bench users with one setting changed at a time, every other "
            f"setting as configured. Means with {section['confidence']:.0%} percentile-bootstrap "
            f"intervals over users (B = {section['resamples']}, seed {section['seed']}); "
            "\"re-run\" says what each value ran now, everything else was reused.")


def stale_note(path: str) -> str:
    return (f"measured under another configuration than the current one: run `tailormind "
            f"bench sweep --param {path}=...` again")


def figures(section: dict[str, Any], report: dict[str, Any]) -> dict[str, bytes | None]:
    return {p["plot"]: plots.sweep_curves(p["path"], p["curve"]["values"], p["curve"]["labels"],
                                          p["curve"]["panels"], p["curve"]["configured"],
                                          section["confidence"])
            for p in section["params"]}


def refresh(workspace: Workspace, settings: Settings) -> dict[str, Path]:
    """After a sweep: the bench report rewritten with every section rebuilt (``report.json``,
    ``.md``, ``.html``, ``plots/``) when there is one; else this section's plots alone, under
    ``bench/plots/``. Returns the paths written (the report's, or plot name -> path)."""
    bench_dir = workspace.root / BENCH_DIR
    report = read_json_record(bench_dir / REPORT_JSON, "bench report")
    if report is not None:
        report_sections.attach(workspace, settings, report)
        return write_report(bench_dir, report)
    section = build(workspace, settings, {})
    written: dict[str, Path] = {}
    for name, png in (figures(section, {}) if section else {}).items():
        if png is not None:
            (bench_dir / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
            written[name] = bench_dir / PLOTS_DIR / f"{name}.png"
            write_bytes_atomic(written[name], png)
    return written
