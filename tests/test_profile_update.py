"""``profile update``: only users with newer interactions are re-profiled, from their current
profile; versions, history, withheld repeats of held-out items, zero model calls for the rest,
and a re-run that changes nothing."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pytest

from tailormind.data.appends import watermark
from tailormind.data.schemas import PROFILES, with_defaults
from tailormind.data.workspace import Workspace
from tailormind.errors import WorkspaceError
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.update import HISTORY_TABLE, fresh_negatives, history_of, update_profiles
from tests.conftest import fresh
from tests.fakes import ProfilingText
from tests.incremental import append_interactions, untouched_items
from tests.workspaces import make_profiler


@pytest.fixture
def ws(generated_base, tmp_path):
    base, settings = generated_base
    return fresh((base.root, settings), tmp_path), settings


def _profiles(ws) -> dict[str, dict]:
    return {r["user_id"]: r for r in with_defaults(ws.read("profiles"), PROFILES).to_pylist()}


def _test_positive(ws, user: str) -> str:
    candidates = ws.read("candidates")
    rows = candidates.filter(pc.and_(pc.equal(candidates.column("user_id"), user),
                                     pc.equal(candidates.column("split"), "test")))
    return rows.column("positive")[0].as_py()


def test_only_users_with_new_interactions_are_updated(ws) -> None:
    ws, settings = ws
    before = _profiles(ws)
    a, b, c = sorted(before)[:3]
    new_items = untouched_items(ws, a, 2)
    append_interactions(ws, [(a, new_items[0], 1), (a, new_items[1], 2),
                             (b, _test_positive(ws, b), 3)])
    assert watermark(ws).append_id == 1
    text = ProfilingText()
    report = update_profiles(ws, settings, profiler=make_profiler(ws, settings, text))
    after = _profiles(ws)
    # a: a new version from its current profile, its evidence the two new items
    assert (after[a]["version"], after[a]["parent_version"], after[a]["watermark"]) == (2, 1, 1)
    evidence = json.loads(after[a]["evidence"])
    assert evidence == {"since": 0, "positives": new_items, "withheld": 0}
    assert after[a]["initial_profile"] == before[a]["profile"]
    iterations = json.loads(after[a]["iterations"])
    assert iterations[0]["profile"] == before[a]["profile"]  # refinement started from it
    # the only LLM calls were a's critique/update (one user per step), no new init
    assert text.calls and len(text.prompts("profile_init")) == 0
    assert {len(batch) for batch in text.batches} == {1}
    assert all(p.startswith("Stress this") or "Stress this" in p
               for p in text.prompts("update"))
    # b: its only new interaction repeats its held-out test item: withheld, no model call
    assert (after[b]["version"], after[b]["watermark"]) == (2, 1)
    assert after[b]["profile"] == before[b]["profile"] and after[b]["prompt_tokens"] == 0
    assert "withheld" in after[b]["fallback"]
    assert json.loads(after[b]["evidence"])["withheld"] == 1
    # c and everyone else: untouched
    for user in set(before) - {a, b}:
        assert after[user] == {**before[user], **{k: after[user][k] for k in
                                                  ("version", "parent_version", "watermark",
                                                   "updated_at", "evidence")}}
        assert after[user]["version"] == 1 and after[user]["watermark"] == 0
    assert (report.updated, report.advanced, report.withheld) == (1, 1, 1)
    assert report.unchanged == len(before) - 2
    # the superseded versions are in the history
    assert [r["version"] for r in history_of(ws, a)] == [1]
    assert history_of(ws, a)[0]["profile"] == before[a]["profile"]
    assert ws.read(HISTORY_TABLE).num_rows == 2


def test_a_second_run_calls_no_model_and_changes_nothing(ws) -> None:
    ws, settings = ws
    user = sorted(_profiles(ws))[0]
    append_interactions(ws, [(user, untouched_items(ws, user, 1)[0], 1)])
    update_profiles(ws, settings, profiler=make_profiler(ws, settings, ProfilingText()))
    once = ws.table_path("profiles").read_bytes()
    again = ProfilingText()
    report = update_profiles(ws, settings, profiler=make_profiler(ws, settings, again))
    assert again.calls == [] and report.updated == 0 and report.unchanged == report.users
    assert ws.table_path("profiles").read_bytes() == once


def test_fresh_negatives_are_untouched_seeded_and_change_with_the_watermark(ws) -> None:
    ws, settings = ws
    features = ItemFeatures.load(ws)
    touched = set(features.ids[:30])
    first = fresh_negatives(features, touched, 7, "u1", 1, count=20)
    assert len(first) == len(set(first)) == 20 and not touched & set(first)
    assert fresh_negatives(features, touched, 7, "u1", 1, count=20) == first
    assert fresh_negatives(features, touched, 7, "u1", 2, count=20) != first
    assert fresh_negatives(features, touched, 7, "u2", 1, count=20) != first
    with pytest.raises(WorkspaceError, match="fresh negatives"):
        fresh_negatives(features, set(features.ids[:70]), 7, "u1", 1, count=20)


def test_an_item_without_a_description_says_what_to_run(ws) -> None:
    ws, settings = ws
    user = sorted(_profiles(ws))[0]
    append_interactions(ws, [(user, "brand-new-item", 1)], new_items=["brand-new-item"])
    with pytest.raises(WorkspaceError, match="profile describe"):
        update_profiles(ws, settings, profiler=make_profiler(ws, settings, ProfilingText()))
    assert all(r["version"] == 1 for r in _profiles(ws).values())


#: A child that updates the profiles of the given workspace with the scripted profiler, one user
#: per batch, printing a line after each batch is written (so the parent kills mid-run).
UPDATER = """
import sys, time
from tailormind.config import load_config
from tailormind.data.workspace import Workspace
from tailormind.profiling import update as update_module
from tests.fakes import ProfilingText
from tests.workspaces import make_profiler

ws = Workspace.open(sys.argv[1])
settings = load_config(environ={}, overrides={"models": {"cache_dir": sys.argv[2]},
                                              "profiling": {"batch_users": 1}})
written = update_module.record_updates

def record(plan, table, progress=None):
    written(plan, table, progress)
    print("batch", flush=True)
    time.sleep(0.5)

update_module.record_updates = record
update_module.update_profiles(ws, settings, profiler=make_profiler(ws, settings, ProfilingText()))
print("finished", flush=True)
"""


def _changed_users(ws, count: int) -> list[str]:
    users = sorted(_profiles(ws))[:count]
    append_interactions(ws, [(u, untouched_items(ws, u, 1)[0], n + 1)
                             for n, u in enumerate(users)])
    return users


def _assert_each_updated_once(ws, users: list[str], before: dict[str, dict]) -> None:
    ws = Workspace.open(ws.root)  # another process may have written it
    after = _profiles(ws)
    for user in users:
        assert (after[user]["version"], after[user]["parent_version"]) == (2, 1), user
        assert [r["version"] for r in history_of(ws, user)] == [1], user
        assert history_of(ws, user)[0]["profile"] == before[user]["profile"]
    for user in set(after) - set(users):
        assert after[user]["version"] == 1
    assert not (ws.root / "parts" / "profile_updates").exists()


def test_an_update_killed_with_sigkill_and_run_again_updates_each_user_once(
        ws, models_cache) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    ws, settings = ws
    before = _profiles(ws)
    users = _changed_users(ws, 4)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", UPDATER, str(ws.root), str(models_cache)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    lines = []
    while len(lines) < 2:  # two batches written, two users still to do
        line = child.stdout.readline()
        if not line:
            pytest.fail(f"the updater ended early: {child.communicate()[1].decode()[-2000:]}")
        lines.append(line)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    parts = list((ws.root / "parts" / "profile_updates").glob("part-*.parquet"))
    assert len(parts) >= 2  # the finished batches survived the kill
    assert all(r["version"] == 1 for r in _profiles(ws).values())  # not consolidated yet
    text = ProfilingText()
    report = update_profiles(ws, settings, profiler=make_profiler(ws, settings, text))
    assert report.skipped_done >= 2 and report.updated == 4 - report.skipped_done
    # only the users the killed run had not finished cost model calls now
    assert len(text.prompts("critique")) <= 4 - report.skipped_done
    _assert_each_updated_once(ws, users, before)


def test_a_crash_between_history_and_profiles_is_repaired_by_a_rerun(ws, monkeypatch) -> None:
    ws, settings = ws
    before = _profiles(ws)
    users = _changed_users(ws, 2)
    real_write = Workspace.write

    def crash_on_profiles(self, name, table, **info):
        if name == "profiles":
            raise OSError("disk full (injected)")
        return real_write(self, name, table, **info)

    monkeypatch.setattr(Workspace, "write", crash_on_profiles)
    with pytest.raises(OSError, match="injected"):
        update_profiles(ws, settings, profiler=make_profiler(ws, settings, ProfilingText()))
    monkeypatch.setattr(Workspace, "write", real_write)
    assert ws.read(HISTORY_TABLE).num_rows == 2  # written before the crash
    text = ProfilingText()
    update_profiles(ws, settings, profiler=make_profiler(ws, settings, text))
    assert text.calls == []  # both users' new rows were in the parts
    _assert_each_updated_once(ws, users, before)


def test_the_ray_update_job_and_the_pipeline_stage(ws, tmp_path, monkeypatch, capsys,
                                                   local_ray) -> None:
    """jobs/update_profiles.py on a Ray Data actor (tiny random LM): the changed users get
    version 2, nobody else; the pipeline's update stage then has nothing to do."""
    from tests.conftest import job_module, tiny_text_env

    ws, settings = ws
    before = _profiles(ws)
    users = _changed_users(ws, 2)
    tiny_text_env(monkeypatch, settings, tmp_path / "llm", PROFILING__PROFILE_TOKENS="16",
                  PROFILING__CRITIQUE_TOKENS="16", PROFILING__N_MAX="1")
    code = job_module("update_profiles").main(["--workspace", str(ws.root), "--workers", "1"])
    text = capsys.readouterr().out
    assert code == 0, text[-2000:]
    result = json.loads(text[text.index("{\n"):])["update"]
    assert (result["updated"], result["unchanged"]) == (2, len(before) - 2)
    _assert_each_updated_once(ws, users, before)
    code = job_module("pipeline").main(["--workspace", str(ws.root), "--stages", "update"])
    text = capsys.readouterr().out
    assert code == 0 and "pipeline: update skipped" in text, text[-2000:]


def test_the_cli_without_new_interactions_loads_no_model(ws, cli, monkeypatch) -> None:
    from tailormind.models import registry

    ws, _ = ws

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded although nobody needs an update")

    monkeypatch.setattr(registry, "load_role", no_model)
    done = cli("profile", "update", "--workspace", ws.root, "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["updated"] == 0 and report["unchanged"] == report["users"] > 0
    table = cli("profile", "update", "--workspace", ws.root)
    assert table.code == 0 and "unchanged" in table.out
    unknown = cli("profile", "update", "--workspace", ws.root, "--user", "nobody")
    assert unknown.code != 0 and "has no profile to update" in unknown.err
