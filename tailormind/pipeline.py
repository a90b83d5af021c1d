"""The whole method as one cluster job: import -> describe -> CF -> profile -> update (users with
appended interactions) -> fit -> generate -> evaluate.

Every stage is the library function its own job uses (``jobs/*.py``), run on the connected Ray
cluster, and every stage is idempotent: a finished stage is skipped (``--force`` redoes it), and
the Ray Data stages resume from the parts an interrupted run wrote. After each stage the run's
record — per stage: status, seconds, what it did — is written atomically to
``<workspace>/pipeline/last_run.json``, so a failed run still says how far it got.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tailormind.config import Settings
from tailormind.core.atomic import write_json_atomic
from tailormind.core.vocabulary import MANIFEST
from tailormind.data.workspace import Workspace
from tailormind.data.workspace_location import WorkspaceLocation
from tailormind.errors import ConfigError, TailorMindError, WorkspaceError
from tailormind.progress import ProgressLog

STAGES = ("import", "describe", "cf", "profile", "update", "fit", "generate", "evaluate")
RUN_RECORD = "pipeline/last_run.json"
EVALUATION_REPORT = "evaluation/report.json"


class StageFailed(TailorMindError):
    """A stage finished but not everything in it succeeded (the rest of the run went on)."""

    exit_code = 1

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail or {}


@dataclass
class PipelineOptions:
    """What to run; ``None`` means the config's value."""

    data: Path | None = None  # a MovieLens directory to import when the workspace has none
    slice_users: int | None = None  # import only a seeded sample of N users
    users: int | None = 3  # users to profile and generate for (a seeded sample; None: all)
    workers: int = 1  # Ray Data actors per stage
    cpus_per_worker: float = 1.0
    cf_workers: int = 1  # Ray Train workers
    cf_epochs: int | None = None
    cf_gpu: bool = False  # one GPU per Ray Train worker (NCCL)
    kinds: list[str] | None = None
    stages: tuple[str, ...] = STAGES
    force: bool = False

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; the stages are "
                              f"{', '.join(STAGES)}")
        if (self.users is not None and self.users < 1) or self.workers < 1 or self.cf_workers < 1:
            raise ConfigError("--users, --workers and --cf-workers must be at least 1")


def check_start(location: str, options: PipelineOptions) -> None:
    """Fail before any work when the run cannot start: no workspace at a local location and
    nothing to import, or a ``--data`` directory that is not MovieLens latest-small."""
    from tailormind.data.workspace_location import is_in_place, local_path

    if options.data is not None and not (options.data / "ratings.csv").is_file():
        raise ConfigError(f"--data {options.data}: not a MovieLens latest-small directory "
                          "(no ratings.csv)")
    if (is_in_place(location) and options.data is None
            and not (local_path(location) / MANIFEST).is_file()):
        raise WorkspaceError(f"{location} is not a workspace; pass --data DIR (a MovieLens "
                             "latest-small directory) to import one")
    if options.slice_users is not None and options.slice_users < 1:
        raise ConfigError("--slice-users must be at least 1")


@dataclass
class StageRecord:
    stage: str
    status: str = "pending"  # pending | running | done | skipped | failed
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    """Runs the chosen stages in order on one workspace location (see the module doc)."""

    def __init__(self, where: WorkspaceLocation, settings: Settings, options: PipelineOptions,
                 log: Callable[[str], None] = print) -> None:
        self.where, self.settings, self.options, self.log = where, settings, options, log
        self.records = [StageRecord(s) for s in STAGES if s in options.stages]
        self.started = datetime.now(UTC).isoformat(timespec="seconds")

    @property
    def root(self) -> Path:
        return self.where.path

    def run(self) -> dict[str, Any]:
        failures: list[str] = []
        for record in self.records:
            record.status = "running"
            self.log(f"pipeline: {record.stage} ...")
            began = time.perf_counter()
            try:
                record.detail = getattr(self, f"stage_{record.stage}")()
                record.status = "skipped" if record.detail.pop("skipped", False) else "done"
            except StageFailed as exc:
                record.status, record.detail = "failed", {**exc.detail, "error": str(exc)}
                failures.append(f"{record.stage}: {exc}")
            except BaseException as exc:
                record.status, record.detail = "failed", {"error": f"{type(exc).__name__}: {exc}"}
                raise
            finally:
                record.seconds = time.perf_counter() - began
                self.log(f"pipeline: {record.stage} {record.status} in {record.seconds:.1f}s")
                self.save()
        report = self.report()
        if failures:
            raise StageFailed("; ".join(failures) + f" (run record: {self.root / RUN_RECORD})")
        return report

    def report(self) -> dict[str, Any]:
        return {"workspace": self.where.uri, "started": self.started,
                "stages": [asdict(r) for r in self.records],
                "seconds": round(sum(r.seconds for r in self.records), 1)}

    def save(self) -> None:
        if (self.root / MANIFEST).is_file():
            write_json_atomic(self.root / RUN_RECORD, self.report())

    def workspace(self) -> Workspace:
        return Workspace.open(self.root)

    # -- stages ----------------------------------------------------------------------------
    def stage_import(self) -> dict[str, Any]:
        from tailormind.data.importers import import_movielens
        from tailormind.data.ingest import save_import
        from tailormind.data.slice import slice_users
        from tailormind.data.split import split_workspace

        opts, settings = self.options, self.settings
        exists = (self.root / MANIFEST).is_file()
        if exists and not opts.force and self.workspace().has("candidates"):
            return {"skipped": True, "reason": "already imported and split"}
        if not exists and opts.data is None:
            raise WorkspaceError(f"{self.where.uri} is not a workspace yet; pass --data DIR (a "
                                 "MovieLens latest-small directory) to import one")
        if opts.data is not None and (not exists or opts.force):
            bundle = import_movielens(opts.data)
            if opts.slice_users:
                bundle = slice_users(bundle, opts.slice_users, settings.seeds.split)
            ws = save_import(bundle, self.root, overwrite=True)
        else:  # imported but not split yet, or --force without --data: split again
            ws = self.workspace()
        split = split_workspace(ws, negatives=settings.data.negatives,
                                min_interactions=settings.data.min_interactions,
                                seed=settings.seeds.split)
        return {"users": ws.read("users", columns=["user_id"]).num_rows,
                "items": ws.read("items", columns=["item_id"]).num_rows,
                "interactions": ws.read("interactions", columns=["user_id"]).num_rows,
                "split": split.report}

    def stage_describe(self) -> dict[str, Any]:
        from tailormind.profiling.ray_items import describe_items_ray

        progress = ProgressLog("describe", "items")
        report = describe_items_ray(self.workspace(), self.settings,
                                    workers=self.options.workers,
                                    cpus_per_worker=self.options.cpus_per_worker,
                                    force=self.options.force, progress=progress,
                                    on_plan=progress.plan,
                                    resources=self.where.actor_resources())
        detail = {**asdict(report), "counts": dict(report.counts)}
        if report.described == 0 and not self.options.force:
            detail["skipped"] = True
        return detail

    def stage_cf(self) -> dict[str, Any]:
        """Train the CF model and write ``cf_topk``; skipped when both exist and have seen every
        append. Interactions appended since the checkpoint (``data append``): fine-tune it on the
        grown graph (``cf train --resume``) and recompute only the users whose neighbourhood
        changed (``cf recommend --users-changed``)."""
        from tailormind.cf.checkpoint import artifact_name, load_checkpoint
        from tailormind.data.appends import watermark

        ws, cfg = self.workspace(), self.settings.cf
        if ws.has_artifact(artifact_name(cfg.model)) and ws.has("cf_topk") and not self.options.force:
            seen, now = load_checkpoint(ws, cfg.model).watermark, watermark(ws).append_id
            if seen >= now:
                return {"skipped": True, "model": cfg.model, "reason": "checkpoint and cf_topk exist"}
            return self._train_cf(resume=True) | {"resumed_from_watermark": seen, "watermark": now}
        return self._train_cf(resume=False)

    def _train_cf(self, *, resume: bool) -> dict[str, Any]:
        from tailormind.cf.checkpoint import save_checkpoint
        from tailormind.cf.data import load_cf_data
        from tailormind.cf.distributed import train_distributed
        from tailormind.cf.recommend import recommend_workspace
        from tailormind.cf.resume import prepare_resume

        ws, cfg = self.workspace(), self.settings.cf
        data = load_cf_data(ws)
        plan = prepare_resume(ws, cfg.model, data, cfg) if resume else None
        result = train_distributed(ws, cfg, plan.model if plan else cfg.model,
                                   workers=self.options.cf_workers, seed=self.settings.seeds.cf,
                                   epochs=self.options.cf_epochs or (plan.epochs if plan else None),
                                   use_tags=plan.use_tags if plan else None,
                                   use_gpu=self.options.cf_gpu, resume=plan.name if plan else None,
                                   resources=self.where.actor_resources())
        save_checkpoint(ws, result, data, cfg, lineage=plan.checkpoint.lineage if plan else None,
                        resumed=plan.summary() if plan else None)
        topk = recommend_workspace(ws, cfg.model, cfg.top_k, users_changed=resume)
        summary = {k: v for k, v in result.summary().items() if k != "history"}
        return {"model": cfg.model, "workers": self.options.cf_workers, "notes": result.notes,
                "summary": summary, "resumed": resume,
                "users_recomputed": topk.recomputed if topk.recomputed is not None else data.n_users}
        # metrics: the evaluate stage

    def stage_profile(self) -> dict[str, Any]:
        from tailormind.profiling.ray_profiles import profile_users_ray

        progress = ProgressLog("profile", "users")
        report = profile_users_ray(self.workspace(), self.settings, workers=self.options.workers,
                                   cpus_per_worker=self.options.cpus_per_worker,
                                   sample=self.options.users, force=self.options.force,
                                   progress=progress, on_plan=progress.plan,
                                   resources=self.where.actor_resources())
        detail = {**asdict(report), "fallbacks": dict(report.fallbacks)}
        if report.profiled == 0:
            detail["skipped"] = True
        return detail

    def stage_update(self) -> dict[str, Any]:
        """Profiles of users with interactions appended since (``data append``) brought up to
        date from their current version (``jobs/update_profiles.py``); nobody else is touched."""
        from tailormind.profiling.ray_update import update_profiles_ray

        ws = self.workspace()
        if not ws.has("profiles"):
            return {"skipped": True, "reason": "no profiles yet"}
        progress = ProgressLog("update", "users")
        report = update_profiles_ray(ws, self.settings, workers=self.options.workers,
                                     cpus_per_worker=self.options.cpus_per_worker,
                                     progress=progress, on_plan=progress.plan,
                                     resources=self.where.actor_resources())
        detail = asdict(report)
        if report.updated == 0 and report.advanced == 0:
            detail["skipped"] = True
        return detail

    def stage_fit(self) -> dict[str, Any]:
        """The hybrid ranker's weights on the validation sets (seconds; refit every run, so
        they always match the profiles just made)."""
        from tailormind.profiling.fit import fit_hybrid

        fusion = fit_hybrid(self.workspace(), self.settings)
        return {"weights": fusion.as_dict(), "fit_sets": fusion.fit_sets}

    def stage_generate(self) -> dict[str, Any]:
        from tailormind.generation.batch import plan_generations
        from tailormind.generation.gallery import write_gallery
        from tailormind.generation.ray_generate import generate_users_ray

        ws = self.workspace()
        plan = plan_generations(ws, self.settings, sample=self.options.users,
                                kinds=self.options.kinds, force=self.options.force)
        progress = ProgressLog("generate", "posts")
        progress.plan(len(plan.todo))
        report = generate_users_ray(ws, self.settings, plan, workers=self.options.workers,
                                    cpus_per_worker=self.options.cpus_per_worker,
                                    progress=progress, resources=self.where.actor_resources())
        detail = {**asdict(report), "fallbacks": dict(report.fallbacks),
                  "gallery": str(write_gallery(ws))}
        if report.failed:
            for key, error in report.failed.items():
                self.log(f"generate: {key} failed: {error}")
            raise StageFailed(f"{len(report.failed)} of {report.wanted} posts failed; the rest "
                              "are bundled — run again after fixing the cause", detail)
        if report.generated == 0:
            detail["skipped"] = True
        return detail

    def stage_evaluate(self) -> dict[str, Any]:
        report = evaluate_workspace_all(self.workspace(), self.settings)
        return {"report": str(self.root / EVALUATION_REPORT),
                "cf": report["cf"], "profiles": report["profiles"]}


def evaluate_workspace_all(ws: Workspace, settings: Settings) -> dict[str, Any]:
    """CF (every trained model) and profile (every profiles table) metrics on the test candidate
    sets, written to ``evaluation/report.json`` and returned."""
    from tailormind.cf.checkpoint import trained_models
    from tailormind.cf.evaluate import evaluate_workspace
    from tailormind.profiling.evaluate import evaluate_profiles, variant_tables

    if not trained_models(ws) and not ws.has("profiles"):
        raise WorkspaceError(f"nothing to evaluate in {ws.root}: no CF model and no profiles")
    report: dict[str, Any] = {
        "evaluated": datetime.now(UTC).isoformat(timespec="seconds"),
        "cf": evaluate_workspace(ws) if trained_models(ws) else [],
        "profiles": (asdict(evaluate_profiles(ws, settings, variant_tables(ws)))
                     if ws.has("profiles") else None),
    }
    write_json_atomic(ws.root / EVALUATION_REPORT, report)
    return report
