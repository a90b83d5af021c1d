"""``tailormind bench run`` and ``jobs/evaluate.py`` with a real (tiny, randomly initialised)
transformers LM as writer and judge: the command completes, writes the report, prints the JSON,
and bad choices are one-line errors."""

from __future__ import annotations

import json

import pytest

from tailormind.data.importers import import_synthetic
from tailormind.data.ingest import save_import
from tailormind.data.split import split_workspace
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh, job_module, tiny_text_env
from tests.fakes import ProfilingText
from tests.workspaces import hand_metrics, make_profiler

SMALL = {"GENERATION__ANSWER_FORMAT": "fields", "GENERATION__LINE_TOKENS": "8",
         "GENERATION__BODY_TOKENS": "16", "GENERATION__REFLECTION_ROUNDS": "1",
         "PROFILING__N_MAX": "1", "PROFILING__PROFILE_TOKENS": "16",
         "PROFILING__CRITIQUE_TOKENS": "16", "BENCH__CALIBRATION_PAIRS": "10"}


def _profiled(profiled_ws, tmp_path, users: int = 2):
    from tailormind.bench.users import select_users

    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    chosen = [u.user_id for u in select_users(ws, users, settings.seeds.bench)]
    profile_users(ws, settings, users=chosen, profiler=make_profiler(ws, settings, ProfilingText()))
    return ws, settings, chosen


def test_evaluate_job_then_bench_command(profiled_ws, tmp_path, monkeypatch, capsys, cli,
                                         local_ray) -> None:
    """jobs/evaluate.py runs the benchmark and writes the report; `bench run --json` then
    reuses every post (nothing generated) and prints the same numbers."""
    ws, settings, chosen = _profiled(profiled_ws, tmp_path)
    tiny_text_env(monkeypatch, settings, tmp_path / "llm", **SMALL)
    methods = "[tailormind, ground_truth, no_reflection]"
    monkeypatch.setenv("TAILORMIND_BENCH__METHODS", methods)
    assert job_module("evaluate").main(["--workspace", str(ws.root), "--bench-users", "2"]) == 0
    out = capsys.readouterr().out
    assert "bench tailormind: 2 posts to do" in out
    printed = json.loads(out[out.index("{\n"):])
    # the profile evaluation: the 2 profiled users of the 24, every method on them, and the
    # rankings without a fit exactly as worked out from the workspace's tables
    profiles = printed["profiles"]
    assert profiles["users_all"] == 24 and profiles["users_profiled"] == 2
    rows = {r["method"]: r for r in profiles["rows"]}
    assert list(rows) == ["popularity", "hypergraph", "history-content", "profile (init)",
                          "profile (refined)", "hybrid w/o profile", "hybrid (init profile)",
                          "hybrid"]
    assert all(r["users"] == 2 for r in rows.values())
    for method, metrics in hand_metrics(ws, set(chosen)).items():
        assert rows[method]["sample"] == pytest.approx(metrics, abs=1e-12), method
    for method, metrics in hand_metrics(ws, methods=("popularity", "history-content")).items():
        assert rows[method]["all"] == pytest.approx(metrics, abs=1e-12), method  # all 24 users
    assert [c["iteration"] for c in profiles["curve"]] == [0, 1]  # PROFILING__N_MAX=1
    assert {(p["a"], p["b"]) for p in profiles["paired"] if p["users"] == "profiled"} >= {
        ("hybrid", "hybrid w/o profile"), ("profile (refined)", "profile (init)")}
    assert printed["bench"]["report"]["html"].endswith("bench/report.html")
    saved = json.loads((ws.root / "bench" / "report.json").read_text())
    assert saved["users"] == chosen and saved["dimensions"] == printed["bench"]["dimensions"]
    for name in ("report.md", "report.html", "plots/dimension_bars.png"):
        assert (ws.root / "bench" / name).is_file(), name
    assert saved["models"]["judge"]["backend"] == "transformers"
    # the tiny LM wrote the posts and judges them: every judge label says so
    assert saved["judge"] == f"judge: {saved['models']['judge']['model']} (self-judged)"
    assert saved["judge_self"] is True and saved["calibration"]["judge_self"] is True
    assert all(d["pairs"] >= 10 for d in saved["calibration"]["dimensions"].values())
    for dim in ("coherence", "novelty", "aesthetic", "hallucination"):
        for method, values in saved["dimensions"][dim]["rows"].items():
            for entry in values.values():  # a random LM's answers: counted when unusable
                assert entry["n"] + entry["missing"] == 2, (dim, method)
    coherence = saved["dimensions"]["coherence"]["rows"]["tailormind"]["text_coherence"]
    assert coherence["n"] == 2 and -1 <= coherence["low"] <= coherence["high"] <= 1

    result = cli("bench", "run", "-w", ws.root, "--users", "2", "--json",
                 "--methods", "tailormind,ground_truth,no_reflection")
    assert result.code == 0, result.err[-3000:]
    assert "posts to do" not in result.err  # every post reused
    report = json.loads(result.out)  # progress went to stderr: stdout is the JSON
    assert report["dimensions"] == saved["dimensions"]
    assert [m["generation"]["made_now"] for m in report["methods"] if m["generation"]] == [0, 0]
    table = cli("bench", "run", "-w", ws.root, "--users", "2",
                "--methods", "tailormind,ground_truth,no_reflection")
    assert table.code == 0 and "Coherence" in table.out and "report:" in table.out


def test_bench_run_bad_choices(profiled_ws, tmp_path, cli) -> None:
    ws = fresh(profiled_ws, tmp_path)
    for args, message in [
        (("--methods", "tailormind,gpt4"), "unknown bench method 'gpt4'"),
        (("--users", "2", "--user", "u1"), "--users N or --user U, not both"),
        (("--user", "ghost"), "user 'ghost' is not in the workspace"),
    ]:
        result = cli("bench", "run", "-w", ws.root, *args)
        assert result.code == 2 and message in result.err, (args, result.err)
        assert "Traceback" not in result.err
    bare = save_import(import_synthetic(users=6, items=20, tags=3, per_user=6, seed=1),
                       tmp_path / "bare")
    split_workspace(bare, seed=1, negatives=5)
    result = cli("bench", "run", "-w", bare.root, "--users", "2")
    assert result.code == 2 and "needs the cf_topk table" in result.err
