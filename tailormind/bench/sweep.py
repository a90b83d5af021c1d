"""``tailormind bench sweep``: the sensitivity study (the paper's RQ4), one factor at a time.

Each ``--param PATH=V1,V2,...`` is its own curve: TailorMind on the bench users
(:func:`~tailormind.bench.users.select_users`, ``bench.users``, ``seeds.bench``) with PATH set to
each value in turn and every other setting as configured. A value re-runs only the stages it
affects and reuses the rest:

* ``profiling.<key>``: the bench users are profiled into ``profiles__sweep_<hash>`` (12 hex
  digits of the sections a profile depends on: profiling, models, seeds, cf — the hash each
  profile row records), posts are made from those profiles under ``bench/sweep/``, scored, and
  the variant's profiling metrics (Recall/NDCG@10/20 of the refined profile on the 1:99 test
  sets, :func:`~tailormind.bench.profiling_dimension.table_metrics`) computed;
* ``generation.<key>``: the main ``profiles`` are reused; only posts are made and scored;
* a value equal to the configured one is TailorMind itself: the main ``profiles`` table and the
  product's posts in ``generations/`` (those ``bench run`` made).

``cf.*`` (a retrained CF model and ``cf_topk``), the profiling keys of the item descriptions
(``profile describe``) and the other sections cannot be swept: asking, like an unknown key, a
value the config rejects or an empty list, is a one-line :class:`ConfigError` before anything
runs.

Posts have deterministic ids (:func:`~tailormind.generation.pipeline.planned_post_id`), so a value
finds the bundles an earlier run (or another value with the same profile text and generation
settings) made; a post already scored in ``sweep.json`` under the same scoring settings is not
scored again, and the model call cache makes any repeated call free. ``bench/sweep.json`` is
written atomically after each finished value: a killed sweep resumes, and a value whose inputs
(the whole configuration with the value applied, and the users) are unchanged and whose posts all
exist is reused without a model call. The report's "Sensitivity" section
(:mod:`tailormind.bench.sensitivity`) reads it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tailormind.bench.methods import BENCH_DIR, METHODS, Method
from tailormind.bench.posts import read_posts
from tailormind.bench.profiling_dimension import table_metrics
from tailormind.bench.report import PROFILING_METRICS, estimate
from tailormind.bench.run import generate_for, load_scoring
from tailormind.bench.scoring import CONTENT_COLUMNS, PostScorer
from tailormind.bench.users import BenchUser, select_users
from tailormind.config import Settings
from tailormind.core.atomic import read_json_record, write_json_atomic
from tailormind.data.item_tags import model_items
from tailormind.data.workspace import Workspace
from tailormind.errors import ConfigError
from tailormind.generation.pipeline import Roles
from tailormind.models.roles import TextModel
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.fusion import Signals
from tailormind.profiling.profiler import Profiler
from tailormind.profiling.profiles import build_ranker, profile_users
from tailormind.progress import ProgressLog

Log = Callable[[str], None]

SWEEP_JSON = "sweep.json"
#: ``bench/sweep/``: the bundles of every value that is not the configured one.
SWEEP_DIR = "sweep"
SWEEPABLE = ("profiling", "generation")
#: Profiling keys of ``profile describe`` (the item descriptions), which a sweep does not re-run.
DESCRIBE_KEYS = frozenset({"passthrough_short_text", "short_text_chars", "tag_lists",
                           "item_description_tokens", "max_images_per_item",
                           "describe_batch_size", "describe_model_items_per_part"})
#: The sections a profile depends on (``profiles.provenance``'s hash): a variant table's name.
PROFILE_INPUTS = ("profiling", "models", "seeds", "cf")
EXAMPLE = "e.g. --param profiling.n_max=0,1,2,3"
VERSION = 1


@dataclass(frozen=True)
class SweepParam:
    """One curve: ``path`` (``section.key``), its validated values in the order given (JSON
    values, duplicates dropped) and its configured value."""

    path: str
    values: tuple[Any, ...]
    configured: Any

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.path.split(".", 1)[1]

    def overrides(self, value: Any) -> dict[str, Any]:
        return {self.section: {self.key: value}}


def value_label(value: Any) -> str:
    """A value as one writes it on the command line (``true``, ``null``, ``0.5``, ``hybrid``)."""
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)


def value_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _check_path(path: str, settings: Settings) -> None:
    section, _, key = path.partition(".")
    if section not in SWEEPABLE:
        why = ("cannot be swept (a sweep re-runs profiling and generation only)"
               if section in type(settings).model_fields else "is not a config section")
        raise ConfigError(f"--param {path}: {section!r} {why}; sweepable sections: "
                          f"{', '.join(SWEEPABLE)} ({EXAMPLE})")
    if key in DESCRIBE_KEYS:
        raise ConfigError(f"--param {path}: changes the item descriptions (`tailormind profile "
                          "describe`), which a sweep does not re-run")
    keys = [k for k in type(getattr(settings, section)).model_fields if k not in DESCRIBE_KEYS]
    if key not in keys:
        raise ConfigError(f"--param {path}: unknown key {key!r} of {section}; choose from "
                          f"{', '.join(keys)}")


def _parse_value(path: str, raw: str, settings: Settings) -> Any:
    """``raw`` as a YAML scalar, validated by the config; the value as the config holds it."""
    section, key = path.split(".", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--param {path}: {raw!r} is not a YAML value") from None
    try:
        checked = settings.with_overrides({section: {key: value}})
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--param {path}={raw}: {message}") from None
    return getattr(checked, section).model_dump(mode="json")[key]


def parse_param(spec: str, settings: Settings) -> SweepParam:
    """``PATH=V1,V2,...`` -> a :class:`SweepParam` (every problem a one-line ConfigError)."""
    path, sep, raw = spec.partition("=")
    path = path.strip()
    if not sep or not path:
        raise ConfigError(f"--param {spec!r}: write PATH=V1,V2,... ({EXAMPLE})")
    _check_path(path, settings)
    pieces = [p.strip() for p in raw.split(",")]
    if not any(pieces):
        raise ConfigError(f"--param {path}: no values; write {path}=V1,V2,... ({EXAMPLE})")
    if not all(pieces):
        raise ConfigError(f"--param {path}: an empty value in {raw.strip()!r}")
    values = {}
    for piece in pieces:
        value = _parse_value(path, piece, settings)
        values.setdefault(value_key(value), value)
    section, key = path.split(".", 1)
    return SweepParam(path, tuple(values.values()),
                      getattr(settings, section).model_dump(mode="json")[key])


def parse_params(specs: list[str], settings: Settings) -> list[SweepParam]:
    """Every ``--param``, validated before anything runs."""
    if not specs:
        raise ConfigError(f"bench sweep needs at least one --param PATH=V1,V2,... ({EXAMPLE})")
    params = [parse_param(spec, settings) for spec in specs]
    paths = [p.path for p in params]
    twice = next((p for p in paths if paths.count(p) > 1), None)
    if twice:
        raise ConfigError(f"--param {twice} is given twice; list all its values in one --param")
    return params


class SweepMethod(Method):
    """TailorMind with one setting changed: bundles under ``bench/sweep/`` (never the
    workspace's ``generations/`` or its ``generations`` table)."""

    def output_root(self, workspace_root: Path) -> Path:
        return workspace_root / BENCH_DIR / SWEEP_DIR


def value_method(param: SweepParam, value: Any, settings: Settings) -> Method:
    """The method one value runs: TailorMind itself when the value is the configured one."""
    changed = settings.with_overrides(param.overrides(value))
    if changed.config_hash() == settings.config_hash():
        return METHODS["tailormind"]
    variant = (f"sweep_{changed.config_hash(*PROFILE_INPUTS)}" if param.section == "profiling"
               else None)
    shown = f"{param.path} = {value_label(value)}"
    return SweepMethod("sweep", f"TailorMind, {shown}",  # type: ignore[arg-type]
                       f"TailorMind with {shown}", overrides=param.overrides(value),
                       profiles_variant=variant)


def inputs_hash(settings: Settings, user_ids: list[str]) -> str:
    """12 hex digits of what a value's numbers depend on: the configuration and the users."""
    data = json.dumps({"config": settings.config_hash(), "users": user_ids, "version": VERSION})
    return hashlib.sha256(data.encode()).hexdigest()[:12]


def scoring_hash(settings: Settings) -> str:
    """What a post's scores depend on besides the post: the bench (judge) and model settings."""
    return settings.config_hash("bench", "models")


def sweep_path(workspace: Workspace) -> Path:
    return workspace.root / BENCH_DIR / SWEEP_JSON


def load_sweep(workspace: Workspace) -> dict[str, Any] | None:
    """``bench/sweep.json`` (None when there is none; a corrupt one is an error naming it)."""
    return read_json_record(sweep_path(workspace), "sweep file")


def ordered(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A curve's values by value when they are all numbers, else in the order they came."""
    if all(isinstance(v["value"], (int, float)) and not isinstance(v["value"], bool)
           for v in values):
        return sorted(values, key=lambda v: v["value"])
    return values


@dataclass
class SweepModels:
    """Models that replace the configured ones (tests, notebooks); each None one is loaded the
    first time it is needed, so a sweep with nothing new to do loads no model."""

    roles: Roles | None = None
    judge: TextModel | None = None
    profiler_text: TextModel | None = None


@dataclass
class SweepResult:
    doc: dict[str, Any]
    path: Path
    params: list[str] = field(default_factory=list)  # the paths swept now
    failed: int = 0  # posts that failed (counted as missing in their values)


class _Sweep:
    """One ``bench sweep``: the users, the sweep file and the models and inputs loaded so far."""

    def __init__(self, workspace: Workspace, settings: Settings, users: list[BenchUser],
                 models: SweepModels, log: Log) -> None:
        self.ws, self.settings, self.users, self.models, self.log = (workspace, settings, users,
                                                                      models, log)
        self.ids = [u.user_id for u in users]
        doc = load_sweep(workspace) or {}
        cfg = settings.bench
        self.doc: dict[str, Any] = {
            "version": VERSION, "created": doc.get("created") or _now(), "updated": _now(),
            "confidence": cfg.confidence, "resamples": cfg.bootstrap_resamples,
            "seed": settings.seeds.bench, "models": doc.get("models") or {},
            "params": doc.get("params") or {}}
        self.scoring = scoring_hash(settings)
        self.scored = {r["path"]: r for p in self.doc["params"].values() for v in p["values"]
                       if v.get("scoring") == self.scoring for r in v["rows"] if r.get("path")}
        self.failed = 0
        self._features: ItemFeatures | None = None
        self._items: dict[str, dict[str, Any]] | None = None
        self._scorer: PostScorer | None = None
        self._signals: Signals | None = None

    @property
    def features(self) -> ItemFeatures:
        if self._features is None:
            self._features = ItemFeatures.load(self.ws)
        return self._features

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        if self._items is None:
            self._items = {r["item_id"]: r for r in model_items(
                self.ws, columns=["item_id", "title", "text", "tags", "image_paths"]).to_pylist()}
        return self._items

    def save(self) -> None:
        self.doc["updated"] = _now()
        sweep_path(self.ws).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(sweep_path(self.ws), self.doc, ensure_ascii=False)

    def param(self, param: SweepParam) -> None:
        """Every value of ``param``; the file is written after each one."""
        base = self.settings.config_hash()
        old = self.doc["params"].get(param.path) or {}
        same = old.get("base_config") == base and old.get("users") == self.ids
        values: dict[str, dict[str, Any]] = {v["key"]: v for v in old.get("values", [])} \
            if same else {}  # another configuration's values would mislead: dropped
        entry = {"path": param.path, "section": param.section, "key": param.key,
                 "configured": param.configured, "configured_label": value_label(param.configured),
                 "base_config": base, "users": self.ids}
        for value in param.values:
            found = self.value(param, value, values.get(value_key(value)))
            values[found["key"]] = found
            self.doc["params"][param.path] = {**entry, "values": ordered(list(values.values()))}
            self.save()

    def value(self, param: SweepParam, value: Any, old: dict[str, Any] | None) -> dict[str, Any]:
        """One value's numbers: reused whole when its inputs are unchanged and no post failed."""
        label = value_label(value)
        inputs = inputs_hash(self.settings.with_overrides(param.overrides(value)), self.ids)
        if old and old.get("inputs") == inputs and not old.get("failed"):
            self.log(f"sweep {param.path}={label}: reused (inputs unchanged)")
            return {**old, "reused": True}
        started = time.perf_counter()
        method = value_method(param, value, self.settings)
        self.log(f"sweep {param.path}={label}: profiles {method.profiles_table}, posts under "
                 f"{method.output_root(self.ws.root).relative_to(self.ws.root)}/")
        profiles = self.profiles(method)
        generation, paths, self.models.roles = generate_for(
            self.ws, self.settings, method, self.users, self.models.roles, 1, self.log)
        self.failed += len(generation["failed"])
        rows, scores = self.score(method, paths)
        profile_rows = (table_metrics(self.ws, self.signals(), method.profiles_table, self.ids)
                        if param.section == "profiling" else [])
        return {
            "key": value_key(value), "value": value, "label": label,
            "configured": method.name == "tailormind", "inputs": inputs,
            "scoring": self.scoring, "reused": False,
            "stages": {"profiles": profiles,
                       "posts": {"root": str(method.output_root(self.ws.root).relative_to(
                           self.ws.root)), "made_now": generation["made_now"],
                           "state": "ran" if generation["made_now"] else "reused"},
                       "scores": scores,
                       "profiling_metrics": "computed" if profile_rows else "not affected"},
            "failed": generation["failed"], "seconds": round(time.perf_counter() - started, 1),
            "metrics": self.metrics(rows, profile_rows), "rows": rows,
            "profile_rows": profile_rows}

    def profiles(self, method: Method) -> dict[str, Any]:
        """The bench users in the value's profiles table (profiled where missing)."""
        msettings = method.settings(self.settings)
        progress = ProgressLog(f"sweep profiles ({method.profiles_table})", "users")
        text = self.models.profiler_text
        profiler = None if text is None else Profiler(msettings, self.features, build_ranker(
            msettings, self.features, text=text, workspace=self.ws), text)
        report = profile_users(self.ws, msettings, users=self.ids,
                               variant=method.profiles_variant, profiler=profiler,
                               progress=progress, on_plan=progress.plan)
        return {"table": method.profiles_table, "profiled_now": report.profiled,
                "state": "ran" if report.profiled else "reused",
                "seconds": round(report.seconds, 1), "fallbacks": dict(report.fallbacks)}

    def score(self, method: Method, paths: dict[str, Path]
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Per-post score rows (those scored before, under the same settings, reused)."""
        posts = read_posts(self.ws, method, self.users, paths, self.items,
                           self.settings.bench.judge_history_items)
        todo = [p for p in posts.values() if p.path not in self.scored]
        if todo:
            for row in self.scorer().score("tailormind", todo):
                self.scored[row["path"]] = row
        rows = [self.scored[p.path] for p in posts.values()]
        return rows, {"scored_now": len(todo), "reused": len(rows) - len(todo),
                      "state": "ran" if todo else "reused"}

    def scorer(self) -> PostScorer:
        """The bench's scorer (the judge, embeddings, CLIP and the vision judge when
        configured), loaded on first use."""
        if self._scorer is None:
            s = load_scoring(self.ws, self.settings, self.models.roles, self.models.judge)
            self._features = s.features
            self._scorer = PostScorer(s.features, s.items, self.users, embed=s.embed,
                                      judge=s.judge, clip=s.clip, vision=s.vision,
                                      history_items=self.settings.bench.judge_history_items)
            self.doc["models"] = {
                "embed": s.embed.provenance, "judge": s.judge.text.provenance,
                **({"clip": s.clip.provenance} if s.clip is not None else {}),
                **({"vision_judge": s.vision.provenance} if s.vision is not None else {})}
        return self._scorer

    def signals(self) -> Signals:
        if self._signals is None:
            self._signals = Signals(self.ws, self.settings, self.features)
        return self._signals

    def metrics(self, rows: list[dict[str, Any]], profile_rows: list[dict[str, Any]]
                ) -> dict[str, dict[str, Any]]:
        """Per metric: mean, bootstrap interval, n and missing over the bench users."""
        expected = len(self.users)
        found = {key: estimate([r[key] for r in rows if r.get(key) is not None], self.settings,
                               expected) for key in CONTENT_COLUMNS}
        if profile_rows:
            found.update({key: estimate([r[key] for r in profile_rows], self.settings, expected)
                          for key in PROFILING_METRICS})
        return found


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_sweep(workspace: Workspace, settings: Settings, specs: list[str], *,
              users: int | None = None, log: Log = print,
              models: SweepModels | None = None) -> SweepResult:
    """Sweep every ``--param`` spec on ``users`` bench users (default ``bench.users``): every
    spec and the users are checked before anything runs; ``bench/sweep.json`` is written after
    each value."""
    params = parse_params(specs, settings)
    bench_users = select_users(workspace, users or settings.bench.users, settings.seeds.bench)
    log(f"sweep: {len(bench_users)} users, " + "; ".join(
        f"{p.path} = {', '.join(value_label(v) for v in p.values)} (configured: "
        f"{value_label(p.configured)})" for p in params))
    sweep = _Sweep(workspace, settings, bench_users, models or SweepModels(), log)
    for param in params:
        sweep.param(param)
    return SweepResult(sweep.doc, sweep_path(workspace), [p.path for p in params], sweep.failed)
