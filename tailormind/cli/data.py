"""``tailormind data``: import a data set into a workspace, append to it, split it, print its
statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tailormind.cli.console import err, out, progress_bar, status
from tailormind.cli.state import settings_of
from tailormind.data.importers import (
    FORMATS,
    import_ml100k,
    import_movielens,
    import_synthetic,
    import_table,
)
from tailormind.data.append import AppendReport, Reader, append_files
from tailormind.data.ingest import check_target, save_import
from tailormind.data.records import ImportBundle
from tailormind.data.split import split_workspace
from tailormind.data.stats import workspace_stats
from tailormind.data.workspace import Workspace
from tailormind.errors import TailorMindError

app = typer.Typer(help="Import, split and describe data sets (TailorBench format).", no_args_is_help=True)

#: Formats ``data append`` reads (synthetic data generates a whole data set).
APPEND_FORMATS = tuple(f for f in FORMATS if f != "synthetic")
WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", envvar="TAILORMIND_WORKSPACE", help="Workspace directory.")
]
_TABLE = "Table format options"
_SYN = "Synthetic format options"


def _opt(help_text: str, panel: str = _TABLE, *decls: str) -> Any:
    return typer.Option(*decls, help=help_text, rich_help_panel=panel)


Encoding = Annotated[str | None, typer.Option(
    help="Text encoding of the input files (table: a file's own 'encoding' in the mapping wins).")]
Sep = Annotated[str | None, _opt("Field separator of delimited files.")]
ListSep = Annotated[str | None, _opt("Separator of list cells (tags, media paths).")]
ItemTags = Annotated[Path | None, _opt("Item-tag file (item id, tag).")]
UserCol = Annotated[str | None, _opt("Interactions: user id column.")]
ItemCol = Annotated[str | None, _opt("Interactions: item id column.")]
TimestampCol = Annotated[str | None, _opt("Interactions: timestamp column.")]
WeightCol = Annotated[str | None, _opt("Interactions: weight column.")]
ItemsIdCol = Annotated[str | None, _opt("Items: item id column.")]
TitleCol = Annotated[str | None, _opt("Items: title column.")]
TextCol = Annotated[str | None, _opt("Items: text column.")]
TagsCol = Annotated[str | None, _opt("Items: tags (list) column.")]
ImageCol = Annotated[str | None, _opt("Items: image paths (list) column.")]
VideoCol = Annotated[str | None, _opt("Items: video paths (list) column.")]
CreatedCol = Annotated[str | None, _opt("Items: creation time column.")]
TagItemCol = Annotated[str | None, _opt("Item-tag file: item id column.")]
TagCol = Annotated[str | None, _opt("Item-tag file: tag column.")]
TagUserCol = Annotated[str | None, _opt("Item-tag file: tagging user column (rows become tag events).")]
TagTimestampCol = Annotated[str | None, _opt("Item-tag file: tag event time column.")]
OnDangling = Annotated[str | None, _opt(
    "Rows naming unknown items or missing lookup ids: error (default) or drop (counted).")]
UsersIdCol = Annotated[str | None, _opt("Users file: user id column.")]
Platform = Annotated[str | None, _opt("Platform name stored on the items.")]
DataRoot = Annotated[Path | None, _opt("Media paths are relative to this directory.")]


@app.command("import")
def import_command(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Data directory, interactions file or mapping YAML.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(FORMATS)}.")] = "movielens",
    workspace: WorkspaceOpt = Path("workspace"),
    overwrite: Annotated[bool, typer.Option(help="Replace an existing workspace.")] = False,
    encoding: Encoding = None,
    sep: Sep = None,
    list_sep: ListSep = None,
    items: Annotated[str | None, _opt("table: items file; synthetic: number of items (5000).")] = None,
    item_tags: ItemTags = None,
    users: Annotated[str | None, _opt("table: users file; synthetic: number of users (1000).")] = None,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    weight_col: WeightCol = None,
    items_id_col: ItemsIdCol = None,
    title_col: TitleCol = None,
    text_col: TextCol = None,
    tags_col: TagsCol = None,
    image_col: ImageCol = None,
    video_col: VideoCol = None,
    created_col: CreatedCol = None,
    tag_item_col: TagItemCol = None,
    tag_col: TagCol = None,
    tag_user_col: TagUserCol = None,
    tag_timestamp_col: TagTimestampCol = None,
    on_dangling: OnDangling = None,
    users_id_col: UsersIdCol = None,
    platform: Platform = None,
    data_root: DataRoot = None,
    n_tags: Annotated[int, _opt("Tags.", _SYN, "--tags")] = 500,
    per_user: Annotated[float, _opt("Mean interactions per user.", _SYN, "--per-user")] = 20.0,
    seed: Annotated[int | None, _opt("Seed (default: config seeds.synthetic).", _SYN, "--seed")] = None,
) -> None:
    """Import a data set into a new workspace (written atomically: all or nothing)."""
    settings = settings_of(ctx)
    _check_import_flags(fmt, path, on_dangling)
    check_target(workspace, overwrite=overwrite)
    table_flags = dict(
        sep=sep, encoding=encoding, list_sep=list_sep, items=items, item_tags=item_tags,
        users=users, user_col=user_col, item_col=item_col, timestamp_col=timestamp_col,
        weight_col=weight_col, items_id_col=items_id_col, title_col=title_col,
        text_col=text_col, tags_col=tags_col, image_col=image_col, video_col=video_col,
        created_col=created_col, tag_item_col=tag_item_col, tag_col=tag_col,
        tag_user_col=tag_user_col, tag_timestamp_col=tag_timestamp_col,
        users_id_col=users_id_col, platform=platform, data_root=data_root, on_dangling=on_dangling,
    )
    with status(f"importing {fmt} {path or ''}".rstrip()):
        bundle = _read_bundle(
            fmt, path, encoding=encoding, users=users, items=items, tags=n_tags, per_user=per_user,
            seed=settings.seeds.synthetic if seed is None else seed, table_flags=table_flags,
        )
    with status(f"writing workspace {workspace}"):
        ws = save_import(bundle, workspace, overwrite=overwrite)
    _print_import(bundle, ws)


def _check_import_flags(fmt: str, path: Path | None, on_dangling: str | None) -> None:
    """Refuse an unknown format, a missing PATH, and flags the format does not take."""
    if fmt not in FORMATS:
        raise TailorMindError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt != "synthetic" and path is None:
        raise TailorMindError(f"--format {fmt} needs a PATH")
    if on_dangling is not None and fmt != "table":
        raise TailorMindError("--on-dangling applies to --format table only")


def _read_bundle(fmt: str, path: Path | None, *, encoding: str | None, users: str | None,
                 items: str | None, tags: int, per_user: float, seed: int,
                 table_flags: dict[str, Any]) -> ImportBundle:
    """Import with the importer of ``fmt``; ``users`` / ``items`` are counts for synthetic data
    (defaults 1000 / 5000), ``table_flags`` the keyword arguments of :func:`import_table`."""
    if fmt == "movielens":
        return import_movielens(path, encoding=encoding or "utf-8")  # type: ignore[arg-type]
    if fmt == "ml100k":
        return import_ml100k(path, encoding=encoding)  # type: ignore[arg-type]
    if fmt == "synthetic":
        return import_synthetic(
            users=_count(users, "--users", 1000), items=_count(items, "--items", 5000),
            tags=tags, per_user=per_user, seed=seed,
        )
    return import_table(path, **table_flags)  # type: ignore[arg-type]


def _print_import(bundle: ImportBundle, ws: Workspace) -> None:
    """What was imported, and the report's non-zero counts, on stderr."""
    err.print(
        f"imported {bundle.users.num_rows:,} users, {bundle.items.num_rows:,} items, "
        f"{bundle.interactions.num_rows:,} interactions into {ws.root}"
    )
    for key in ("duplicate_interactions_merged", "interactions_without_timestamp",
                "users_without_attributes", "items_without_metadata", "tag_events",
                "duplicate_tag_events_merged", "media_files"):
        if bundle.report.get(key):
            err.print(f"  {key.replace('_', ' ')}: {bundle.report[key]:,}")
    for name, n in bundle.report.get("dropped_dangling", {}).items():
        err.print(f"  dropped (dangling) from {name}: {n:,}")


def _count(value: str | None, flag: str, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise TailorMindError(f"{flag} must be a whole number with --format synthetic, got {value!r}") from None


@app.command("append")
def append_command(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(
        help="Data directories, interactions files or mapping YAMLs, all of --format.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(APPEND_FORMATS)}.")] = "movielens",
    workspace: WorkspaceOpt = Path("workspace"),
    encoding: Encoding = None,
    sep: Sep = None,
    list_sep: ListSep = None,
    items: Annotated[str | None, _opt("Items file (new items; items of the workspace need none).")] = None,
    item_tags: ItemTags = None,
    users: Annotated[str | None, _opt("Users file.")] = None,
    user_col: UserCol = None,
    item_col: ItemCol = None,
    timestamp_col: TimestampCol = None,
    weight_col: WeightCol = None,
    items_id_col: ItemsIdCol = None,
    title_col: TitleCol = None,
    text_col: TextCol = None,
    tags_col: TagsCol = None,
    image_col: ImageCol = None,
    video_col: VideoCol = None,
    created_col: CreatedCol = None,
    tag_item_col: TagItemCol = None,
    tag_col: TagCol = None,
    tag_user_col: TagUserCol = None,
    tag_timestamp_col: TagTimestampCol = None,
    on_dangling: OnDangling = None,
    users_id_col: UsersIdCol = None,
    platform: Platform = None,
    data_root: DataRoot = None,
) -> None:
    """Append interactions (and new items, users, tag events) to a workspace: every file is
    checked first, then all is written in one step. Held-out sets never move."""
    settings = settings_of(ctx)
    _check_append_flags(fmt, on_dangling)
    table_flags = dict(
        sep=sep, encoding=encoding, list_sep=list_sep, items=items, item_tags=item_tags,
        users=users, user_col=user_col, item_col=item_col, timestamp_col=timestamp_col,
        weight_col=weight_col, items_id_col=items_id_col, title_col=title_col,
        text_col=text_col, tags_col=tags_col, image_col=image_col, video_col=video_col,
        created_col=created_col, tag_item_col=tag_item_col, tag_col=tag_col,
        tag_user_col=tag_user_col, tag_timestamp_col=tag_timestamp_col,
        users_id_col=users_id_col, platform=platform, data_root=data_root, on_dangling=on_dangling,
    )
    ws = Workspace.open(workspace)
    read = _append_reader(fmt, encoding, table_flags)
    with status(f"appending {len(files)} file(s) to {workspace}"):
        report = append_files(ws, files, read, fmt=fmt, negatives=settings.data.negatives,
                              min_interactions=settings.data.min_interactions,
                              seed=settings.seeds.split)
    _print_append(report, ws)


def _check_append_flags(fmt: str, on_dangling: str | None) -> None:
    if fmt == "synthetic":
        raise TailorMindError("--format synthetic cannot be appended (it generates a whole data "
                              "set); append files with --format table")
    if fmt not in APPEND_FORMATS:
        raise TailorMindError(f"unknown --format {fmt!r}; choose one of {', '.join(APPEND_FORMATS)}")
    if on_dangling is not None and fmt != "table":
        raise TailorMindError("--on-dangling applies to --format table only")


def _append_reader(fmt: str, encoding: str | None, table_flags: dict[str, Any]) -> Reader:
    """The importer of ``fmt`` as an append reader."""
    if fmt == "movielens":
        return lambda path, rules: import_movielens(path, encoding=encoding or "utf-8", append=rules)
    if fmt == "ml100k":
        return lambda path, rules: import_ml100k(path, encoding=encoding, append=rules)
    return lambda path, rules: import_table(path, append=rules, **table_flags)


def _print_append(report: AppendReport, ws: Workspace) -> None:
    """What was appended, the new watermark and what was withheld or kept, on stderr."""
    err.print(f"appended {report.interactions:,} interactions ({report.new_users:,} new users, "
              f"{report.new_items:,} new items) to {ws.root}; watermark: append "
              f"{report.append_id} at {report.appended_at}")
    counts = {
        "items already in the workspace (its rows kept)": report.items_already_in_workspace,
        "tag events": report.tag_events,
        "tag events already in the workspace (skipped)": report.tag_events_already_in_workspace,
        "duplicate interactions merged (same user and item in one file)":
            report.duplicate_interactions_merged,
        "media files": report.media_files,
        **{f"dropped (dangling) from {name}": n for name, n in report.dropped_dangling.items()},
    }
    split = report.split
    if split is not None:
        counts.update({
            "split: users with new train rows": split["users_extended"],
            "withheld: repeats a held-out item": split["withheld_heldout_repeats"],
            "kept, though a candidate negative of the user": split["appended_among_negatives"],
            "split: users split afresh": split["users_split"],
            "split: new users with candidate sets": split["newly_evaluated_users"],
        })
    for key, n in counts.items():
        if n:
            err.print(f"  {key}: {n:,}")
    if split is None:
        err.print("  the workspace is not split yet: `tailormind data split` splits everything")
    if report.items_to_describe:
        changed = split["descriptions_removed_tags_changed"] if split else 0
        what = "new items" if report.items_to_describe == report.new_items else (
            f"items ({report.new_items:,} new, {changed:,} whose tags changed)")
        err.print(f"{report.items_to_describe:,} {what} need descriptions: run "
                  f"`tailormind profile describe --workspace {ws.root}`")


@app.command("split")
def split_command(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("workspace"),
    negatives: Annotated[int | None, typer.Option(help="Negatives per candidate set (config data.negatives).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (config seeds.split).")] = None,
    min_interactions: Annotated[int | None, typer.Option(help="Fewer: train-only (config data.min_interactions).")] = None,
) -> None:
    """Leave-two-out split by timestamp and the seeded 1:N candidate sets."""
    settings = settings_of(ctx)
    ws = Workspace.open(workspace)
    negatives = settings.data.negatives if negatives is None else negatives
    if negatives < 1:
        raise TailorMindError("--negatives must be >= 1")
    min_interactions = settings.data.min_interactions if min_interactions is None else min_interactions
    if min_interactions < 3:
        raise TailorMindError("--min-interactions must be >= 3 (train, validation and test)")
    n_users = ws.read("users", columns=["user_id"]).num_rows
    with progress_bar("candidate sets (users)", total=n_users) as advance:
        result = split_workspace(
            ws, negatives=negatives, min_interactions=min_interactions,
            seed=settings.seeds.split if seed is None else seed, progress=advance,
        )
    r = result.report
    err.print(
        f"split: {r['train_interactions']:,} train, {r['valid_interactions']:,} valid, "
        f"{r['test_interactions']:,} test; {r['candidate_sets']:,} candidate sets of "
        f"1+{negatives}; train-only users: {r['train_only_users_few_interactions']:,} "
        f"(< {min_interactions} interactions), {r['train_only_users_too_few_unseen_items']:,} "
        f"(too few unseen items)"
    )


@app.command("stats")
def stats_command(
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Users, items, tags, interactions, density, interactions per user, split sizes."""
    stats = workspace_stats(Workspace.open(workspace))
    if as_json:
        print(json.dumps(stats, indent=2))
        return
    print_stats(stats)


def print_stats(stats: dict[str, Any]) -> None:
    table = Table(title=f"workspace {stats['workspace']}", show_header=False)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    per_user = stats["interactions_per_user"]
    rows = [
        ("source", str(stats["source"])),
        ("users", f"{stats['users']:,}"),
        ("items", f"{stats['items']:,}"),
        ("tags", f"{stats['tags']:,}"),
        ("tag events (tags with the user who applied them)", f"{stats.get('tag_events', 0):,}"),
        ("interactions", f"{stats['interactions']:,}"),
        ("density", f"{stats['density']:.4%}"),
        ("interactions / user (min / median / max)",
         f"{per_user['min']} / {per_user['median']:g} / {per_user['max']}"),
        ("interactions without timestamp", f"{stats['interactions_without_timestamp']:,}"),
    ]
    if stats.get("order_note"):
        rows.append(("note", stats["order_note"]))
    reasons = stats.get("dropped_dangling_reasons", {})
    for name, n in stats.get("dropped_dangling", {}).items():
        why = ", ".join(f"{r}: {k:,}" for r, k in reasons.get(name, {}).items())
        rows.append((f"dropped (dangling) from {name}", f"{n:,}" + (f" ({why})" if why else "")))
    split = stats.get("split")
    if split:
        rows += [
            ("split: train / valid / test interactions",
             f"{split['train_interactions']:,} / {split['valid_interactions']:,} / "
             f"{split['test_interactions']:,}"),
            ("split: evaluated users", f"{split['evaluated_users']:,}"),
            ("split: train-only users (< min interactions)",
             f"{split['train_only_users_few_interactions']:,}"),
            ("split: train-only users (too few unseen items)",
             f"{split['train_only_users_too_few_unseen_items']:,}"),
            ("split: candidate sets", f"{split['candidate_sets']:,} x (1 + {split['negatives']})"),
            ("split: seed", str(split["seed"])),
        ]
        if "tag_events_withheld" in split:
            rows.append(("split: tag events withheld (a user's own tags on their held-out items)",
                         f"{split['tag_events_withheld']:,} of {split['tag_events']:,} "
                         f"({split['users_with_withheld_tags']:,} users)"))
    else:
        rows.append(("split", "not split yet (tailormind data split)"))
    rows += _watermark_rows(stats)
    for key, value in rows:
        table.add_row(key, value)
    out.print(table)


def _watermark_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """The watermark, the appends and what each stage has not seen yet."""
    mark = stats.get("watermark") or {"append_id": 0, "appended_at": None}
    if not mark["append_id"]:
        return [("watermark", "0 (nothing appended since the import)")]
    rows = [("watermark (append id, time)", f"{mark['append_id']} at {mark['appended_at']}"),
            ("appends / appended interactions",
             f"{stats['appends']:,} / {stats['appended_interactions']:,}")]
    profiles = stats.get("appended_since_profiles")
    rows.append(("appended since the profiles (users behind)",
                 f"{profiles['interactions']:,} ({profiles['users_behind']:,} of "
                 f"{profiles['profiled_users']:,} profiled users)" if profiles else "no profiles yet"))
    for key, label in (("appended_since_cf", "appended since the last CF checkpoint"),
                       ("appended_since_cf_topk", "appended since cf_topk")):
        found = stats.get(key)
        rows.append((label, f"{found['interactions']:,} (it has append {found['watermark']})"
                     if found else "not run yet"))
    return rows
