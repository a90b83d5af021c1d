"""Profiles: init from history + CF, the textual-gradient loop, fallbacks, resumption, evaluation,
and the rule that the test item is never seen before the final evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tailormind.config import load_config
from tailormind.core.sampling import sample_users
from tailormind.data.workspace import Workspace
from tailormind.profiling.evaluate import evaluate_profiles
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh, job_module, tiny_text_env
from tests.fakes import ProfilingText
from tests.workspaces import hand_metrics, make_profiler


def test_refinement_moves_the_profile_and_never_sees_the_test_item(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    text = ProfilingText()
    profiler = make_profiler(ws, settings, text)
    report = profile_users(ws, settings, profiler=profiler)
    assert report.complete and report.profiled == report.users > 0
    rows = {r["user_id"]: r for r in ws.read("profiles").to_pylist()}
    improved = 0
    for row in rows.values():
        history = json.loads(row["iterations"])
        assert history[0]["iteration"] == 0 and history[0]["profile"] == row["initial_profile"]
        assert row["valid_rank_final"] <= row["valid_rank_initial"]  # rejections keep it monotone
        assert row["iterations_run"] <= settings.profiling.n_max
        improved += row["valid_rank_final"] < row["valid_rank_initial"]
        if row["valid_rank_initial"] == 1:
            assert row["iterations_run"] == 0  # Eq. 14: already first, nothing to refine
    assert improved > 0
    # the test item: never a candidate given to the ranker, never described in a prompt
    candidates = ws.read("candidates")
    test = candidates.filter(pc.equal(candidates.column("split"), "test")).to_pylist()
    for row in test:
        seen = profiler.ranker.seen.get(row["user_id"], [])
        assert seen and all(row["positive"] not in c for c in seen)
    # nor part of any user's evidence: not history, not a validation candidate (CF(D_u) may
    # predict it — CF is trained on train only — which is a prediction, not a leak)
    from tailormind.profiling.evidence import load_evidence

    evidence = load_evidence(ws)
    for row in test:
        user = evidence[row["user_id"]]
        assert row["positive"] not in user.history
        assert row["positive"] != user.valid_positive
        assert row["positive"] not in user.valid_negatives


def test_worse_updates_are_rejected_unless_configured(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    bad = ProfilingText(update="Enjoys nothing at all, only silence.")
    profile_users(ws, settings, profiler=make_profiler(ws, settings, bad))
    rows = ws.read("profiles").to_pylist()
    steps = [s for r in rows for s in json.loads(r["iterations"])[1:]]
    assert steps and any(not s["accepted"] for s in steps)
    for r in rows:  # greedy decoding: a rejected update ends the user (a rerun would repeat it)
        history = json.loads(r["iterations"])[1:]
        rejected = [i for i, s in enumerate(history) if not s["accepted"]]
        assert rejected in ([], [len(history) - 1])
    assert all(r["profile"] == r["initial_profile"] for r in rows if r["accepted_updates"] == 0)
    lenient = load_config(environ={}, overrides={**_overrides(settings),
                                                 "profiling": {"reject_worse_updates": False}})
    profile_users(ws, lenient, profiler=make_profiler(ws, lenient, bad), force=True)
    rows = ws.read("profiles").to_pylist()
    assert all(s["accepted"] for r in rows for s in json.loads(r["iterations"])[1:])


def _overrides(settings) -> dict:
    return {"models": {"cache_dir": str(settings.models.cache_dir)}}


def test_fallbacks_are_recorded_and_the_job_goes_on(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    report = profile_users(ws, settings, profiler=make_profiler(
        ws, settings, ProfilingText(init="", critique="ok")))
    rows = ws.read("profiles").to_pylist()
    assert report.complete and all(r["profile"].startswith("Recently enjoyed: ") for r in rows)
    assert all("init: the model returned an empty profile" in r["fallback"] for r in rows)
    assert any("critique unusable" in (r["fallback"] or "") for r in rows)
    assert report.fallbacks["init"] == len(rows)
    timeouts = profile_users(ws, settings, force=True, profiler=make_profiler(
        ws, settings, ProfilingText(fail_on="update")))
    rows = ws.read("profiles").to_pylist()
    assert timeouts.complete and len(rows) == timeouts.users
    refined = [r for r in rows if r["valid_rank_initial"] > 1]
    assert refined and all("update: text model failed" in r["fallback"] for r in refined)


def test_a_killed_run_resumes_without_recomputing(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, base = profiled_ws
    settings = load_config(environ={}, overrides={**_overrides(base),
                                                  "profiling": {"batch_users": 4}})
    first = ProfilingText()
    report = profile_users(ws, settings, profiler=make_profiler(ws, settings, first), limit=8)
    assert not report.complete and report.profiled == 8 and not ws.has("profiles")
    second = ProfilingText()
    report = profile_users(ws, settings, profiler=make_profiler(ws, settings, second))
    assert report.complete and report.skipped_done == 8
    inits = second.prompts("profile_init")
    assert len(inits) == report.users - 8  # the finished users were not asked again
    users = ws.read("profiles", columns=["user_id"]).column("user_id").to_pylist()
    assert len(users) == len(set(users)) == report.users


def test_sample_is_seeded_and_stable() -> None:
    users = [f"u{i}" for i in range(50)]
    assert sample_users(users, 10, 7) == sample_users(list(reversed(users)), 10, 7)
    assert sample_users(users, 10, 7) != sample_users(users, 10, 8)
    assert sample_users(users, 80, 7) == sorted(users)


def test_evaluation_rows_and_curve(profiled_ws, tmp_path) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    profile_users(ws, settings, profiler=make_profiler(ws, settings, ProfilingText()))
    report = evaluate_profiles(ws, settings)
    methods = [r["method"] for r in report.rows]
    assert methods == ["popularity", "hypergraph", "history-content", "profile (init)",
                       "profile (refined)", "hybrid w/o profile", "hybrid (init profile)", "hybrid"]
    assert report.users_all == report.users_profiled == 24  # every synthetic user is profiled
    rows = {r["method"]: r for r in report.rows}
    expected = hand_metrics(ws)
    for method, metrics in expected.items():  # the rankings without a fit, exactly
        assert rows[method]["sample"] == pytest.approx(metrics, abs=1e-12), method
        if method in ("popularity", "history-content"):
            assert rows[method]["all"] == pytest.approx(metrics, abs=1e-12), method
    assert expected["profile (refined)"] != expected["profile (init)"]  # refinement moved them
    for row in report.rows:  # CF and the fitted hybrids: not computable by hand here
        assert 0 <= row["sample"]["recall@10"] <= row["sample"]["recall@20"] <= 1
        assert row["users"] == report.users_profiled
    assert [p["iteration"] for p in report.curve] == list(range(settings.profiling.n_max + 1))
    ranks = [p["mean_valid_rank"] for p in report.curve]
    assert ranks == sorted(ranks, reverse=True)  # accepted updates never worsen validation
    signals = ["log popularity", "cf:hypergraph", "history mean", "history max", "recent mean",
               "item kNN", "recent item kNN"]
    assert list(report.fusion_weights_no_profile) == signals
    assert list(report.fusion_weights) == [*signals, "profile"]
    assert report.fusion_source == "fit in memory (not saved)"  # no `profile fit` yet, and
    assert not ws.has_artifact("fusion")  # evaluating writes nothing (profile fit saves them)
    # every user is profiled here: the paired differences are on the profiled users only
    assert {(p["a"], p["b"]) for p in report.paired} >= {("hybrid", "hybrid w/o profile"),
                                                         ("profile (refined)", "profile (init)")}
    assert all(p["users"] == "profiled" and p["n"] == report.users_profiled for p in report.paired)


@pytest.mark.slow
def test_cli_run_and_eval(cli, profiled_ws, tmp_path, monkeypatch) -> None:
    """The real embedded SmolLM2 end to end on 3 users (N_max 1 to keep it short); about a
    minute on 2 cores, so with the other real-model tests in the slow suite."""
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(settings.models.cache_dir))
    monkeypatch.setenv("TAILORMIND_PROFILING__N_MAX", "1")
    monkeypatch.setenv("TAILORMIND_PROFILING__PROFILE_TOKENS", "48")
    monkeypatch.setenv("TAILORMIND_PROFILING__CRITIQUE_TOKENS", "32")
    result = cli("profile", "run", "--workspace", ws.root, "--users", "3", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["complete"] and report["users"] == 3 and report["completion_tokens"] > 0
    # the real LLM ranker on one user: one window of all 31 candidates, no re-asks (the window
    # and final-window logic is covered with a dummy engine in test_profiling_rankers.py)
    monkeypatch.setenv("TAILORMIND_PROFILING__LLM_WINDOW", "40")
    monkeypatch.setenv("TAILORMIND_MODELS__TEXT__JSON_RETRIES", "0")
    result = cli("profile", "eval", "--workspace", ws.root, "--json", "--llm-ranker-users", "1")
    assert result.code == 0, result.err
    evaluation = json.loads(result.out)
    assert evaluation["users_profiled"] == 3 and len(evaluation["curve"]) == 2
    rows = {r["method"]: r for r in evaluation["rows"]}
    llm = rows["LLM ranker (refined profile)"]
    assert llm["users"] == 1 and llm["ranker_stats"]["windows"] == 1
    assert llm["llm_tokens_per_user"] > 0
    assert rows["profile (refined)"]["llm_tokens_per_user"] > 0
    assert {"hybrid", "hybrid w/o profile"} <= set(rows)
    table = cli("profile", "eval", "--workspace", ws.root)
    assert table.code == 0 and "refinement curve" in table.out


#: ``tailormind ARGS`` in a child that stops (alive, blocked) right after its second profile
#: part is on disk and says so on stderr, so the parent's SIGKILL lands at a known point.
STOP_AFTER_TWO_PARTS = """
import sys, threading
from tailormind.cli.main import run
from tailormind.profiling.parts import PartWriter

original, written = PartWriter.write, []

def write(self, table):
    path = original(self, table)
    written.append(path)
    if len(written) == 2:
        print("TWO PARTS WRITTEN", file=sys.stderr, flush=True)
        threading.Event().wait()  # until the SIGKILL
    return path

PartWriter.write = write
sys.exit(run(sys.argv[1:]))
"""


def test_sigkill_halfway_then_resume(profiled_ws, tmp_path) -> None:
    """`tailormind profile run` killed with SIGKILL once its first two batches (2 users each)
    are written: the re-run profiles only the 20 users left, and every user ends with exactly
    one profile."""
    import os
    import signal
    import subprocess
    import sys
    import threading

    from tests.tiny_models import tiny_llama

    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAILORMIND_")}
    env.update({
        "TAILORMIND_MODELS__CACHE": "false",
        "TAILORMIND_MODELS__CACHE_DIR": str(settings.models.cache_dir),
        "TAILORMIND_MODELS__TEXT__BACKEND": "transformers",
        "TAILORMIND_MODELS__TEXT__PATH": str(tiny_llama(tmp_path / "llm")),
        "TAILORMIND_PROFILING__BATCH_USERS": "2",
        "TAILORMIND_PROFILING__PROFILE_TOKENS": "96",
        "TAILORMIND_PROFILING__CRITIQUE_TOKENS": "96",
    })
    args = ["profile", "run", "--workspace", str(ws.root), "--json"]
    process = subprocess.Popen([sys.executable, "-c", STOP_AFTER_TWO_PARTS, *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    watchdog = threading.Timer(600, process.kill)  # a hung child fails the test, not the run
    watchdog.start()
    try:
        for line in process.stderr:  # blocks until the child says it stopped (or exits)
            seen.append(line)
            if line.strip() == "TWO PARTS WRITTEN":
                break
        assert seen and seen[-1].strip() == "TWO PARTS WRITTEN", "".join(seen)[-2000:]
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        process.kill()
        process.stderr.close()
    parts = ws.root / "parts" / "profiles"
    assert len(list(parts.glob("part-*.parquet"))) == 2 and not ws.has("profiles")
    exe = Path(sys.executable).with_name("tailormind")
    rerun = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    assert report["complete"] and report["users"] == 24
    assert report["skipped_done"] == 4 and report["profiled"] == 20
    users = Workspace.open(ws.root).read("profiles", columns=["user_id"]).column("user_id")
    assert sorted(users.to_pylist()) == sorted(
        Workspace.open(ws.root).read("users", columns=["user_id"]).column("user_id").to_pylist())
    assert not parts.exists()


def test_ray_data_profile_job(profiled_ws, tmp_path, monkeypatch, capsys, local_ray) -> None:
    """jobs/profile_users.py on 2 Ray Data actors (tiny random LM): complete, one row per user,
    then --eval scores the methods."""
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    tiny_text_env(monkeypatch, settings, tmp_path / "llm", PROFILING__BATCH_USERS="4",
                  PROFILING__PROFILE_TOKENS="16", PROFILING__CRITIQUE_TOKENS="16")
    code = job_module("profile_users").main([
        "--workspace", str(ws.root), "--workers", "2", "--cpus-per-worker", "0.5",
        "--users", "12", "--eval"])
    text = capsys.readouterr().out
    assert code == 0, text[-2000:]
    assert "profile: 12 users to do" in text
    result = json.loads(text[text.index("{\n"):])
    assert result["profiles"]["complete"] and result["profiles"]["profiled"] == 12
    assert result["evaluation"]["users_profiled"] == 12
    users = Workspace.open(ws.root).read("profiles", columns=["user_id"]).column("user_id")
    assert len(set(users.to_pylist())) == len(users) == 12


def test_a_user_with_one_train_item_and_an_item_without_text(profiled_ws, tmp_path) -> None:
    """Edge evidence: a user left with a single train item, whose item has no description at
    all. The user still gets a profile; the empty item is named as such in the prompt."""
    import pyarrow as pa

    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    split = ws.read("split").to_pylist()
    user = split[0]["user_id"]
    train = [r for r in split if r["user_id"] == user and r["split"] == "train"]
    keep = max(train, key=lambda r: r["position"])
    rows = [r for r in split if not (r["user_id"] == user and r["split"] == "train"
                                     and r is not keep)]
    ws.write("split", pa.Table.from_pylist(rows, schema=ws.read("split").schema))
    features = ws.read("item_features").to_pylist()
    for row in features:
        if row["item_id"] == keep["item_id"]:
            row["description"] = ""
    ws.write("item_features", pa.Table.from_pylist(features,
                                                   schema=ws.read("item_features").schema))
    text = ProfilingText()
    report = profile_users(ws, settings, users=[user], profiler=make_profiler(ws, settings, text))
    assert report.complete and report.profiled == 1
    (row,) = ws.read("profiles").to_pylist()
    assert row["user_id"] == user and row["profile"]
    init = next(iter(text.prompts("profile_init")))
    assert f"(item {keep['item_id']}: no description)" in init
