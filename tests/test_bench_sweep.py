"""``tailormind bench sweep`` (sensitivity, RQ4) on a profiled synthetic workspace after a
``bench run`` of TailorMind: scripted profiler, writer and judge (dummy engines, their calls
counted), the real MiniLM embedder and card images. A sweep over ``profiling.n_max`` renders its
plot into the report; its numbers are the per-post rows' by hand; the configured value reuses
the main profiles and posts; a ``generation.*`` parameter profiles nobody; a re-run calls no
model and a killed one resumes; bad ``--param`` strings are one-line errors."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil

import numpy as np
import pytest

from tailormind.bench.report import PROFILING_METRICS, REPORT_HTML, REPORT_JSON, REPORT_MD
from tailormind.bench.run import run_bench
from tailormind.bench.scoring import CONTENT_COLUMNS
from tailormind.bench.sensitivity import refresh
from tailormind.bench.sweep import SweepModels, load_sweep, run_sweep, sweep_path
from tailormind.bench.users import select_users
from tailormind.core.bootstrap import bootstrap_mean
from tailormind.data.workspace import Workspace
from tailormind.generation.pipeline import Roles
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh
from tests.fakes import ProfilingText, ScriptedText, ScriptedWriter, down, rule_judge
from tests.workspaces import hand_metrics, make_profiler

USERS = 2
N_MAX = "profiling.n_max=0,1,3"  # 3 is the configured value
PLOT = "sensitivity_profiling_n_max"
#: The fixture's settings as the command line gets them (the sweep's inputs hash sees them).
ENV = {"MODELS__CACHE_DIR": None, "CF__EPOCHS": "2", "CF__EMBEDDING_DIM": "8",
       "BENCH__CALIBRATION_PAIRS": "10"}


def _copy(ws: Workspace, tmp_path) -> Workspace:
    return Workspace.open(shutil.copytree(ws.root, tmp_path / "copy"))


def _fakes(roles: Roles, *, profiler: ScriptedText | None = None) -> SweepModels:
    """Fresh scripted models (their calls counted from zero) around ``roles``' real embedder."""
    return SweepModels(roles=dataclasses.replace(roles, text=ScriptedWriter()), judge=rule_judge(),
                       profiler_text=profiler or ProfilingText())


def _calls(models: SweepModels) -> dict[str, int]:
    return {"profiler": len(models.profiler_text.calls), "writer": len(models.roles.text.calls),
            "judge": len(models.judge.calls)}


@pytest.fixture(scope="module")
def benched(profiled_ws, tmp_path_factory):
    """The bench users profiled and ``bench run`` of TailorMind done (report.json written)."""
    ws = fresh(profiled_ws, tmp_path_factory.mktemp("benched"))
    settings = profiled_ws[1].with_overrides({"bench": {"calibration_pairs": 10}})
    chosen = [u.user_id for u in select_users(ws, USERS, settings.seeds.bench)]
    profile_users(ws, settings, users=chosen, profiler=make_profiler(ws, settings, ProfilingText()))
    roles = Roles.load(settings, kinds=("post",))
    roles.text = ScriptedWriter()
    run_bench(ws, settings, users=USERS, methods=["tailormind"], roles=roles,
              judge_model=rule_judge(), log=lambda m: None)
    return ws, settings, roles, chosen


@pytest.fixture(scope="module")
def swept(benched, tmp_path_factory):
    ws, settings, roles, chosen = benched
    ws = _copy(ws, tmp_path_factory.mktemp("swept"))
    models = _fakes(roles)
    result = run_sweep(ws, settings, [N_MAX], users=USERS, models=models, log=lambda m: None)
    written = refresh(ws, settings)
    return ws, settings, roles, chosen, result, models, written


def _values(doc, path="profiling.n_max"):
    return {v["value"]: v for v in doc["params"][path]["values"]}


def test_a_sweep_over_n_max_renders_its_plot(swept) -> None:
    ws, _, _, _, result, _, written = swept
    bench_dir = ws.root / "bench"
    assert set(written) == {"json", "md", "html"}  # the bench report, rewritten
    png = (bench_dir / "plots" / f"{PLOT}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    html = (bench_dir / REPORT_HTML).read_text()
    assert f'alt="{PLOT}" src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    assert html.count(f'alt="{PLOT}"') == 1  # in its section, not again among the plots
    assert 'data-sensitivity="profiling.n_max"' in html
    markdown = (bench_dir / REPORT_MD).read_text()
    section = markdown.split("## Sensitivity (one factor at a time)\n", 1)[1]
    assert "### profiling.n_max (configured: 3; 2 users)" in section
    assert f"![sensitivity: profiling.n_max](plots/{PLOT}.png)" in section
    report = json.loads((bench_dir / REPORT_JSON).read_text())
    [param] = report["sensitivity"]["params"]
    assert param["path"] == "profiling.n_max" and not param["stale"]
    assert [row[0] for row in param["rows"]] == ["0", "1", "3 (configured)"]
    assert param["curve"]["configured"] == 2 and param["curve"]["values"] == [0, 1, 3]
    table = [line for line in section.splitlines() if line.startswith("| 1 |")]
    assert table == ["| " + " | ".join(param["rows"][1]) + " |"]
    assert report["dimensions"]["coherence"]  # the rest of the report is still there


def test_numbers_are_the_per_post_rows_by_hand(swept) -> None:
    ws, settings, _, chosen, result, _, _ = swept
    doc = json.loads(sweep_path(ws).read_text())
    assert doc == json.loads(json.dumps(result.doc))
    cfg = settings.bench
    for value, entry in _values(doc).items():
        assert sorted(r["user_id"] for r in entry["rows"]) == chosen
        for key in CONTENT_COLUMNS:
            found = [r[key] for r in entry["rows"] if r[key] is not None]
            if not found:
                assert entry["metrics"][key]["n"] == 0 and entry["metrics"][key]["mean"] is None
                continue
            boot = bootstrap_mean(found, resamples=cfg.bootstrap_resamples,
                                  alpha=1 - cfg.confidence, seed=settings.seeds.bench)
            assert entry["metrics"][key] == {
                "mean": pytest.approx(float(np.mean(found)), abs=1e-6),
                "low": pytest.approx(boot.low, abs=1e-6),
                "high": pytest.approx(boot.high, abs=1e-6),
                "n": len(found), "missing": USERS - len(found)}, (value, key)
        assert entry["metrics"]["judge_novelty"]["mean"] == 0.8  # the judge's 8 / 10
        # the profiling metrics: the value's own profiles table, ranked by hand
        table = entry["stages"]["profiles"]["table"]
        by_hand = hand_metrics(ws, set(chosen), ("profile (refined)",), table)["profile (refined)"]
        assert sorted(r["user_id"] for r in entry["profile_rows"]) == chosen
        for key in PROFILING_METRICS:
            per_user = [r[key] for r in entry["profile_rows"]]
            assert np.mean(per_user) == pytest.approx(by_hand[key], abs=1e-12)
            assert entry["metrics"][key]["mean"] == pytest.approx(by_hand[key], abs=1e-6)
            assert entry["metrics"][key]["n"] == USERS
    # the configured value is TailorMind: the bench report's numbers for the same users
    report = json.loads((ws.root / "bench" / REPORT_JSON).read_text())
    configured = _values(doc)[3]["metrics"]
    assert configured["text_coherence"] == report["dimensions"]["coherence"]["rows"][
        "tailormind"]["text_coherence"]
    for key in PROFILING_METRICS:
        assert configured[key] == report["dimensions"]["profiling"]["rows"]["tailormind"][key]


def test_each_value_reruns_what_it_changes(swept) -> None:
    ws, settings, _, _, result, models, _ = swept
    values = _values(result.doc)
    tables = {v: e["stages"]["profiles"]["table"] for v, e in values.items()}
    assert tables[3] == "profiles" and values[3]["configured"]
    assert values[3]["stages"]["profiles"]["profiled_now"] == 0
    assert values[3]["stages"]["posts"]["made_now"] == 0  # the bench run's posts
    assert all(r["path"].startswith("generations/") for r in values[3]["rows"])
    for value in (0, 1):
        assert tables[value].startswith("profiles__sweep_") and ws.has(tables[value])
        assert values[value]["stages"]["profiles"]["profiled_now"] == USERS
        assert all(r["path"].startswith("bench/sweep/generations/") for r in values[value]["rows"])
    assert tables[0] != tables[1]
    profiles = [{r["user_id"]: r["profile"] for r in ws.read(tables[v]).to_pylist()}
                for v in (0, 1)]
    assert set(profiles[0].values()) == {"Likes many things."}  # n_max = 0: never refined
    # a post is made once per (profile text, generation settings): n_max = 1 makes a post only
    # for the users whose refined profile differs from n_max = 0's; the others share its bundle
    changed = {u for u in profiles[0] if profiles[1][u] != profiles[0][u]}
    assert values[0]["stages"]["posts"]["made_now"] == USERS
    assert values[1]["stages"]["posts"]["made_now"] == len(changed)
    paths = [{r["user_id"]: r["path"] for r in values[v]["rows"]} for v in (0, 1)]
    assert {u for u in paths[0] if paths[0][u] != paths[1][u]} == changed
    assert values[1]["stages"]["scores"]["scored_now"] == len(changed)
    # two variants profiled (init + at most n_max critiques and updates per user), nothing more
    profiler = models.profiler_text
    assert len(profiler.prompts("profile_init")) == 2 * USERS
    assert len(profiler.prompts("critique")) <= USERS * 1
    # the sweep's posts are not the workspace's: its generations table lists the product's
    assert all(p.startswith("generations/") for p in ws.read("generations").column("path")
               .to_pylist())


def test_the_configured_value_reuses_the_main_profiles_and_posts(benched, tmp_path) -> None:
    ws, settings, roles, _ = benched
    ws = _copy(ws, tmp_path)
    models = _fakes(roles, profiler=ProfilingText(fail_on="profile_init"))
    result = run_sweep(ws, settings, ["profiling.n_max=3"], users=USERS, models=models,
                       log=lambda m: None)
    assert _calls(models) == {"profiler": 0, "writer": 0, "judge": 3 * USERS}  # only scoring
    assert not [t for t in ws.manifest["tables"] if t.startswith("profiles__")]
    [entry] = result.doc["params"]["profiling.n_max"]["values"]
    assert entry["configured"] and entry["stages"]["profiles"]["state"] == "reused"


def test_a_generation_param_profiles_nobody(benched, tmp_path) -> None:
    ws, settings, roles, _ = benched
    ws = _copy(ws, tmp_path)
    models = _fakes(roles, profiler=ScriptedText(otherwise=down("no profiling here")))
    result = run_sweep(ws, settings, ["generation.reflection_rounds=0,3"], users=USERS,
                       models=models, log=lambda m: None)
    assert len(models.profiler_text.calls) == 0
    values = _values(result.doc, "generation.reflection_rounds")
    assert {v["stages"]["profiles"]["table"] for v in values.values()} == {"profiles"}
    assert values[0]["stages"]["posts"]["made_now"] == USERS and values[3]["configured"]
    assert all(not v["profile_rows"] and "recall@10" not in v["metrics"] for v in values.values())
    for row in values[0]["rows"]:
        record = json.loads((ws.root / row["path"] / "post.json").read_text())
        assert len(record["reflection"]["rounds"]) == 1  # the first draft kept
    assert len(refresh(ws, settings)) == 3
    assert "### generation.reflection_rounds (configured: 3; 2 users)" in (
        ws.root / "bench" / REPORT_MD).read_text()


def test_a_rerun_calls_no_model_and_a_killed_one_resumes(swept, tmp_path) -> None:
    ws, settings, roles, _, result, _, _ = swept
    ws = _copy(ws, tmp_path)
    models = _fakes(roles)
    again = run_sweep(ws, settings, [N_MAX], users=USERS, models=models, log=lambda m: None)
    assert _calls(models) == {"profiler": 0, "writer": 0, "judge": 0}
    assert all(v["reused"] for v in _values(again.doc).values())
    strip = lambda doc: {v: e["metrics"] for v, e in _values(doc).items()}  # noqa: E731
    assert strip(again.doc) == strip(result.doc)
    # killed before value 1 was written: only its scoring runs again
    doc = load_sweep(ws)
    doc["params"]["profiling.n_max"]["values"] = [
        v for v in doc["params"]["profiling.n_max"]["values"] if v["value"] != 1]
    sweep_path(ws).write_text(json.dumps(doc))
    models = _fakes(roles)
    resumed = run_sweep(ws, settings, [N_MAX], users=USERS, models=models, log=lambda m: None)
    # its posts are on disk; those it shares with another value are scored in sweep.json
    others = {r["path"] for v in (0, 3) for r in _values(result.doc)[v]["rows"]}
    fresh_posts = [r for r in _values(result.doc)[1]["rows"] if r["path"] not in others]
    assert fresh_posts  # n_max = 1 changed a profile (the scripted critic moves it)
    assert _calls(models) == {"profiler": 0, "writer": 0, "judge": 3 * len(fresh_posts)}
    one = _values(resumed.doc)[1]
    assert not one["reused"] and one["stages"]["scores"]["scored_now"] == len(fresh_posts)
    assert [one["stages"][s]["state"] for s in ("profiles", "posts")] == ["reused", "reused"]
    assert [v["reused"] for v in _values(resumed.doc).values()] == [True, False, True]
    assert strip(resumed.doc) == strip(result.doc)


def test_the_command_reuses_the_sweep_and_prints_it(swept, tmp_path, cli, monkeypatch) -> None:
    ws, settings, _, _, result, _, _ = swept
    ws = _copy(ws, tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(f"TAILORMIND_{key}", value or str(settings.models.cache_dir))
    found = cli("bench", "sweep", "-w", ws.root, "--param", N_MAX, "--users", str(USERS),
                "--json")
    assert found.code == 0, found.err[-3000:]
    printed = json.loads(found.out)  # progress went to stderr
    values = printed["params"]["profiling.n_max"]["values"]
    assert [v["reused"] for v in values] == [True, True, True]
    assert "rows" not in values[0] and values[0]["metrics"] == _values(result.doc)[0]["metrics"]
    assert "reused (inputs unchanged)" in found.err
    table = cli("bench", "sweep", "-w", ws.root, "-p", N_MAX, "--users", str(USERS))
    assert table.code == 0 and "profiling.n_max (configured: 3)" in table.out
    assert "report.html" in table.out


@pytest.mark.parametrize(("param", "message"), [
    ("profiling.nmax=1", "unknown key 'nmax' of profiling; choose from n_max, ranker"),
    ("generation.exemplars_k=0,1", "unknown key 'exemplars_k' of generation; choose from "
     "reflection_rounds, exemplar_top_k"),
    ("profiling.n_max=-1,2", "--param profiling.n_max=-1: Input should be greater than or "
     "equal to 0"),
    ("profiling.ranker=embedding,magic", "--param profiling.ranker=magic: Input should be "
     "'embedding', 'llm' or 'hybrid'"),
    ("profiling.n_max=", "--param profiling.n_max: no values"),
    ("profiling.n_max=1,,2", "an empty value in '1,,2'"),
    ("profiling.n_max", "write PATH=V1,V2,..."),
    ("cf.top_k=5,10", "'cf' cannot be swept (a sweep re-runs profiling and generation only)"),
    ("profiling.tag_lists=select", "changes the item descriptions"),
    (None, "needs at least one --param"),
])
def test_bad_params_are_one_line_errors(profiled_ws, tmp_path, cli, param, message) -> None:
    ws = fresh(profiled_ws, tmp_path)
    before = sorted(p.relative_to(ws.root) for p in ws.root.rglob("*"))
    result = cli("bench", "sweep", "-w", ws.root, *(("--param", param) if param else ()))
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert sorted(p.relative_to(ws.root) for p in ws.root.rglob("*")) == before


def test_a_param_given_twice_is_an_error(profiled_ws, tmp_path, cli) -> None:
    ws = fresh(profiled_ws, tmp_path)
    result = cli("bench", "sweep", "-w", ws.root, "-p", "profiling.n_max=0", "-p",
                 "profiling.n_max=1")
    assert result.code == 2 and "--param profiling.n_max is given twice" in result.err
