"""TailorBench end to end on a profiled synthetic workspace: scripted writer and judge (dummy
engines), the real MiniLM embedder and card images. Checks the numbers against values computed
by hand from the same inputs, the report files against report.json, the ablations' posts, and
that a second run reuses everything."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser

import numpy as np
import pytest

from tailormind.bench.methods import METHODS, generic_profile
from tailormind.bench.report import REPORT_HTML, REPORT_JSON, REPORT_MD, cell, tables
from tailormind.bench.run import run_bench
from tailormind.bench.users import select_users
from tailormind.core.vocabulary import BENCH_METHODS
from tailormind.errors import ConfigError, WorkspaceError
from tailormind.generation.pipeline import Roles
from tailormind.profiling.evaluate import evaluate_profiles
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh
from tests.fakes import ProfilingText, ScriptedText, ScriptedWriter, down, rule_judge
from tests.workspaces import make_profiler

USERS = 4


@pytest.fixture(scope="module")
def bench(profiled_ws, tmp_path_factory):
    ws = fresh(profiled_ws, tmp_path_factory.mktemp("bench"))
    _, settings = profiled_ws
    chosen = [u.user_id for u in select_users(ws, USERS, settings.seeds.bench)]
    profile_users(ws, settings, users=chosen, profiler=make_profiler(ws, settings, ProfilingText()))
    nocf = METHODS["no_cf"].settings(settings)
    profile_users(ws, nocf, users=chosen, variant="nocf",
                  profiler=make_profiler(ws, nocf, ProfilingText(init="Likes a few things.")))
    roles = Roles.load(settings, kinds=("post",))
    roles.text = ScriptedWriter()
    judge = rule_judge()
    result = run_bench(ws, settings, users=USERS, roles=roles, judge_model=judge,
                       log=lambda m: None)
    return ws, settings, result, roles, judge


def _row(report, method, user):
    return next(r for r in report["per_post"] if r["method"] == method and r["user_id"] == user)


def test_every_method_and_dimension_is_reported(bench) -> None:
    ws, _, result, _, _ = bench
    report = result.report
    assert [m["name"] for m in report["methods"]] == list(BENCH_METHODS)
    assert all(m["posts"] == USERS and m["missing"] == 0 for m in report["methods"])
    assert set(report["dimensions"]) == {"coherence", "novelty", "aesthetic", "hallucination",
                                         "profiling"}
    for name in ("coherence", "novelty", "aesthetic", "hallucination"):
        assert set(report["dimensions"][name]["rows"]) == set(BENCH_METHODS)
    # judge columns are labelled by the judge; unmeasured columns say why
    novelty = {m["key"]: m for m in report["dimensions"]["novelty"]["metrics"]}
    assert novelty["judge_novelty"]["source"] == "judge: rule-judge"
    clip = report["dimensions"]["coherence"]["metrics"][1]
    assert not clip["measured"] and "no clip model" in clip["note"]
    assert report["models"]["judge"]["model"] == "rule-judge"
    assert report["versions"]["torch"] and report["versions"]["transformers"]
    assert report["seeds"]["bench"] == 2026 and report["config"]["generation_config_hash"]
    assert report["users"] == sorted(report["users"]) and len(report["users"]) == USERS


def test_judge_numbers_are_the_judges_answers_over_ten(bench) -> None:
    report = bench[2].report
    rows = report["dimensions"]["novelty"]["rows"]
    found = dict(rows["tailormind"]["judge_novelty"])
    # a judge column carries its calibration's verdict beside the numbers
    assert found.pop("signal") is report["calibration"]["dimensions"]["novelty"]["scorers"][
        "judge_novelty"]["signal"]
    assert found == {"mean": 0.8, "low": 0.8, "high": 0.8, "n": USERS, "missing": 0}
    assert rows["ground_truth"]["judge_novelty"]["mean"] == 0.3
    aesthetic = report["dimensions"]["aesthetic"]["rows"]
    assert aesthetic["no_rag"]["judge_aesthetic"]["mean"] == 0.6
    assert aesthetic["ground_truth"]["judge_aesthetic"]["mean"] == 0.5
    hallucination = report["dimensions"]["hallucination"]["rows"]
    assert hallucination["profile_free"]["hallucination"]["mean"] == 1.0  # a cited claim
    assert hallucination["ground_truth"]["hallucination"]["mean"] == 0.0  # "none"
    # 8 for 24 generated posts, 3 for 4 ground truths: 86% < 90%, not flat, so no flag
    assert not any("do not separate the methods" in f for f in report["flags"])


def test_embedding_metrics_match_a_hand_computation(bench) -> None:
    ws, _, result, roles, _ = bench
    from tailormind.profiling.evidence import ItemFeatures

    features = ItemFeatures.load(ws)
    items = {r["item_id"]: r for r in ws.read("items").to_pylist()}
    split = ws.read("split").to_pylist()
    target_of = {r["user_id"]: r["positive"] for r in ws.read("candidates").to_pylist()
                 if r["split"] == "test"}
    for user in result.report["users"][:2]:
        history = [r["item_id"] for r in sorted(split, key=lambda r: r["position"])
                   if r["user_id"] == user and r["split"] != "test"]
        target = target_of[user]
        units = [v / np.linalg.norm(v) for v in features.vectors(history + [target])]
        reference = np.mean(units, axis=0)
        item = items[target]
        text = "\n".join([item["title"], item["text"], " ".join(f"#{t}" for t in item["tags"])])
        vector = roles.embed.embed([text])[0]
        expected = vector @ reference / np.linalg.norm(vector) / np.linalg.norm(reference)
        gt = _row(result.report, "ground_truth", user)
        assert gt["text_coherence"] == pytest.approx(float(expected), abs=1e-5)
        others = np.delete(features.matrix, features.index[target], axis=0)
        sims = others @ vector / np.linalg.norm(others, axis=1) / np.linalg.norm(vector)
        assert gt["objective_novelty"] == pytest.approx(float(np.clip(1 - sims.max(), 0, 1)),
                                                        abs=1e-5)
        post = _row(result.report, "tailormind", user)
        record = json.loads((ws.root / post["path"] / "post.json").read_text())
        assert post["relevance_rounds"] == [r["relevance"] for r in
                                            record["reflection"]["rounds"]]
    # relevance per round: the kept version's, carried forward for posts that stopped early
    kept = [r["kept_relevance_rounds"] for r in result.report["per_post"]
            if r["method"] == "tailormind"]
    curve = result.report["curves"]["relevance_by_round"]["tailormind"]["kept"]
    longest = max(len(k) for k in kept)
    assert len(curve) == longest
    for i in range(longest):
        assert curve[i] == pytest.approx(np.mean([k[min(i, len(k) - 1)] for k in kept]), abs=1e-6)
    assert result.report["curves"]["relevance_by_round"]["no_reflection"]["posts_reaching_round"] \
        == [USERS]


def test_means_and_intervals_agree_with_the_per_post_rows(bench) -> None:
    report = bench[2].report
    for name in ("coherence", "novelty"):
        for method, entry in report["dimensions"][name]["rows"].items():
            for key, value in entry.items():
                found = [r[key] for r in report["per_post"]
                         if r["method"] == method and r[key] is not None]
                if not found:
                    assert value["mean"] is None and value["n"] == 0
                    continue
                assert value["mean"] == pytest.approx(np.mean(found), abs=1e-6)
                assert value["low"] <= value["mean"] <= value["high"]
                assert min(found) - 1e-9 <= value["low"] and value["high"] <= max(found) + 1e-9


def test_profiling_dimension_matches_the_profile_evaluation(bench) -> None:
    ws, settings, result, _, _ = bench
    rows = result.report["dimensions"]["profiling"]["rows"]
    assert {"tailormind", "tailormind_hybrid", "no_refinement", "no_cf", "profile_free",
            "popularity", "cf:hypergraph"} <= set(rows)
    # the bench users are exactly the profiled users here, so the full evaluation agrees
    evaluation = {r["method"]: r for r in evaluate_profiles(ws, settings).rows}
    for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"):
        assert rows["tailormind"][key]["mean"] == pytest.approx(
            evaluation["profile (refined)"]["sample"][key], abs=1e-6)
        assert rows["no_refinement"][key]["mean"] == pytest.approx(
            evaluation["profile (init)"]["sample"][key], abs=1e-6)
    curve = result.report["curves"]["refinement"]
    assert [c["iteration"] for c in curve] == list(range(settings.profiling.n_max + 1))
    assert curve[0]["test"]["recall@10"] == pytest.approx(rows["no_refinement"]["recall@10"]["mean"])


def test_ablation_posts_are_what_their_names_say(bench) -> None:
    ws, _, result, _, _ = bench
    records = {}
    for method in ("tailormind", "profile_free", "no_rag", "no_reflection", "no_cf"):
        row = _row(result.report, method, result.report["users"][0])
        records[method] = json.loads((ws.root / row["path"] / "post.json").read_text())
        expected = "generations" if method == "tailormind" else f"bench/methods/{method}/"
        assert row["path"].startswith(expected)
    assert records["no_rag"]["exemplars"] == [] and records["tailormind"]["exemplars"]
    assert len(records["no_reflection"]["reflection"]["rounds"]) == 1
    assert len(records["tailormind"]["reflection"]["rounds"]) > 1
    assert records["profile_free"]["profile"] == {**records["profile_free"]["profile"],
                                                  "text": generic_profile(), "source": "fixed"}
    assert records["no_cf"]["profile"]["source"] == "profiles__nocf"
    assert all(e["source"] == "history" for e in records["no_cf"]["exemplars"])
    # the workspace's own posts table lists the product's posts only
    listed = ws.read("generations").column("path").to_pylist()
    assert listed and all(p.startswith("generations/") for p in listed)


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.sources: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-dimension" in attrs:
            self.current = self.tables.setdefault(attrs["data-dimension"], [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag == "td" and self.current is not None:
            self._cell = []
        for key in ("src", "href"):
            if key in attrs:
                self.sources.append(attrs[key])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self.current is not None:
            self.current[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_report_files_show_exactly_the_json_numbers(bench) -> None:
    ws, _, result, _, _ = bench
    bench_dir = ws.root / "bench"
    report = json.loads((bench_dir / REPORT_JSON).read_text())
    assert report["dimensions"] == result.report["dimensions"]
    markdown = (bench_dir / REPORT_MD).read_text()
    parser = _Cells()
    parser.feed((bench_dir / REPORT_HTML).read_text())
    for table in tables(report):
        name = table["dimension"]
        section = markdown.split(f"## {name.capitalize()}\n", 1)[1].split("\n## ", 1)[0]
        md_rows = [line.strip("|").split(" | ") for line in section.splitlines()
                   if line.startswith("| ") and not line.startswith("| method")]
        html_rows = [r for r in parser.tables[name] if r]
        dim = report["dimensions"][name]
        assert len(md_rows) == len(html_rows) == len(dim["rows"])
        for md, html, (method, values) in zip(md_rows, html_rows, dim["rows"].items(),
                                              strict=True):
            cells = [c.strip() for c in md[1:]]
            assert [c.strip() for c in html[1:]] == cells
            for text, metric in zip(cells, dim["metrics"], strict=True):
                if not metric["measured"]:
                    assert text == "not measured"
                    continue
                assert text == cell(values[metric["key"]])
                if values[metric["key"]].get("signal") is False:  # an uncalibrated judge
                    assert text == "no signal" and metric["judge"]
                    continue
                if values[metric["key"]]["mean"] is not None:
                    mean, low, high = map(float, re.findall(r"-?\d+\.\d+", text)[:3])
                    assert mean == pytest.approx(values[metric["key"]]["mean"], abs=5e-4)
                    assert (low, high) == pytest.approx((values[metric["key"]]["low"],
                                                         values[metric["key"]]["high"]), abs=5e-4)
    # offline: every image and link is embedded
    assert parser.sources and all(s.startswith("data:") for s in parser.sources)
    for name in ("refinement_curve", "relevance_by_round", "dimension_bars"):
        assert (bench_dir / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}.png" in markdown
    assert "grounded" in markdown and "not the web" in markdown
    assert report["examples"] and len(report["examples"][0]["posts"]) == len(BENCH_METHODS)


def test_the_cost_section_reads_what_the_run_recorded(bench) -> None:
    ws, _, result, _, _ = bench
    report = result.report
    section = report["cost"]
    assert [m["name"] for m in section["methods"]] == list(BENCH_METHODS)
    rows = {m["name"]: {r["key"]: r for r in m["stages"]} for m in section["methods"]}
    records = [json.loads((ws.root / r["path"] / "post.json").read_text())
               for r in report["per_post"] if r["method"] == "tailormind"]
    writing = rows["tailormind"]["writing"]
    assert writing["llm_tokens"]["total"] == sum(r["tokens_by_stage"]["writing"] for r in records)
    assert writing["model_seconds"]["n"] == len(records) == USERS  # this version records them
    assert writing["model_seconds"]["total"] == pytest.approx(
        sum(r["model_seconds_by_stage"]["writing"] for r in records), abs=1e-5)
    assert all(r["gpu_seconds_by_stage"] is None for r in records)  # no model on a GPU here
    profiles = [p for p in ws.read("profiles").to_pylist() if p["user_id"] in report["users"]]
    init, refine = rows["tailormind"]["profiling_init"], rows["tailormind"]["profiling_refine"]
    assert init["llm_tokens"]["total"] + refine["llm_tokens"]["total"] == pytest.approx(
        sum(p["prompt_tokens"] + p["completion_tokens"] for p in profiles))
    assert init["model_seconds"]["n"] == len(profiles) == USERS
    assert list(rows["ground_truth"]) == ["judging"]
    assert all(rows[m]["judging"]["units"] == USERS for m in BENCH_METHODS)
    assert rows["tailormind"]["judging"]["llm_tokens"]["total"] > 0
    markdown = (ws.root / "bench" / REPORT_MD).read_text()
    assert "## Cost (RQ5)" in markdown and "| TailorMind | generation: writing" in markdown
    assert 'data-section="cost"' in (ws.root / "bench" / REPORT_HTML).read_text()
    assert (ws.root / "bench" / "plots" / "cost_by_stage.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_run_reuses_posts_and_gives_the_same_numbers(bench) -> None:
    ws, settings, result, roles, judge = bench
    again = run_bench(ws, settings, users=USERS, roles=roles, judge_model=judge,
                      log=lambda m: None)
    assert all(m["generation"] is None or m["generation"]["made_now"] == 0
               for m in again.report["methods"])
    assert again.report["dimensions"] == result.report["dimensions"]


def test_bad_choices_are_clear_errors(bench) -> None:
    ws, settings, _, _, _ = bench
    with pytest.raises(ConfigError, match="unknown bench method 'gpt4'.*tailormind"):
        run_bench(ws, settings, methods=["gpt4"], log=lambda m: None)
    with pytest.raises(WorkspaceError, match="'nobody' is not in the workspace"):
        select_users(ws, 2, 1, ["nobody"])


def flat_judge() -> ScriptedText:
    """Gives 7 to every post for novelty and for aesthetics (and taste fit); names no claim."""
    return ScriptedText({"judge_novelty": "7", "judge_aesthetic": "7", "judge_coherence": "7",
                         "judge_hallucination": " none"}, model_id="flat-judge",
                        follows_json=False)


def test_a_flat_judge_is_flagged_in_the_result_and_the_report(bench, tmp_path) -> None:
    import shutil

    from tailormind.data.workspace import Workspace

    ws, settings, _, roles, _ = bench
    copy = Workspace.open(shutil.copytree(ws.root, tmp_path / "ws"))
    # a new judge is calibrated anew: on 10 pairs per dimension, not 100, to keep this short
    cheap = settings.with_overrides({"bench": {"calibration_pairs": 10}})
    result = run_bench(copy, cheap, users=USERS, methods=["ground_truth", "tailormind"],
                       roles=roles, judge_model=flat_judge(), log=lambda m: None)
    assert [m["generation"]["made_now"] for m in result.report["methods"]
            if m["generation"]] == [0]  # the posts were reused: only the judging is new
    expected = [f"{key}: the judge gave 0.7 to 100% of {2 * USERS} posts — its scores do not "
                "separate the methods" for key in ("judge_novelty", "judge_aesthetic")]
    flat = [f for f in result.report["flags"] if "do not separate the methods" in f]
    assert flat == expected
    saved = json.loads((copy.root / "bench" / REPORT_JSON).read_text())
    assert [f for f in saved["flags"] if "do not separate" in f] == expected
    markdown = (copy.root / "bench" / REPORT_MD).read_text()
    care = markdown.split("## Read with care\n", 1)[1].split("\n## ", 1)[0]
    assert all(f"- {line}" in care.splitlines() for line in expected)


def broken_writer() -> ScriptedText:
    """A text backend that is down: every prompt, whatever its kind, fails."""
    return ScriptedText(otherwise=down("models.text: connection refused"), backend="broken",
                        model_id="broken")


def test_a_failed_post_is_counted_not_hidden(bench, tmp_path) -> None:
    import dataclasses
    import shutil

    from tailormind.data.workspace import Workspace

    ws, settings, result, roles, judge = bench
    copy = Workspace.open(shutil.copytree(ws.root, tmp_path / "ws"))
    user = result.report["users"][0]
    shutil.rmtree(copy.root / "bench" / "methods" / "no_rag" / "generations" / user)
    logs: list[str] = []
    again = run_bench(copy, settings, users=USERS, methods=["ground_truth", "no_rag"],
                      roles=dataclasses.replace(roles, text=broken_writer()), judge_model=judge,
                      log=logs.append)
    no_rag = next(m for m in again.report["methods"] if m["name"] == "no_rag")
    assert no_rag["posts"] == USERS - 1 and no_rag["missing"] == 1
    assert "connection refused" in no_rag["generation"]["failed"][f"{user}/post"]
    assert any(f"{user}/post failed" in line for line in logs)
    cell_ = again.report["dimensions"]["coherence"]["rows"]["no_rag"]["text_coherence"]
    assert cell_["n"] == USERS - 1 and cell_["missing"] == 1
    assert again.report["dimensions"]["coherence"]["rows"]["ground_truth"]["text_coherence"][
        "n"] == USERS
