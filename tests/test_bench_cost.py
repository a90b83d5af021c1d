"""The cost study (RQ5): every cell against numbers computed by hand from small records written
here (profiles rows, post.json files, bench/scoring_cost.json), records from before the numbers
existed counted as "not recorded" (never 0), the meters that record model and GPU seconds, and
the section as the Markdown and the HTML show it."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pyarrow as pa
import pytest
from PIL import Image

from tailormind.bench import cost
from tailormind.bench.methods import BENCH_DIR
from tailormind.config import load_config
from tailormind.data.schemas import PROFILES
from tailormind.data.workspace import Workspace
from tailormind.generation.bundle import POST_JSON, bundle_dir, write_bundle
from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.steps import StepClock
from tests.fakes import ScriptedText
from tests.post_records import post_record

THROUGHPUT = 100.0  # tokens per GPU-second: estimates are tokens / 100


def _iteration(n: int, prompt: int, completion: int, seconds: float, **cost_keys: object) -> dict:
    return {"iteration": n, "profile": f"p{n}", "valid_rank": 3, "loss": 1.0, "accepted": True,
            "critique": "", "prompt_tokens": prompt, "completion_tokens": completion,
            "seconds": seconds, **cost_keys}


def _profile_row(user: str, prompt: int, completion: int, seconds: float,
                 iterations: list[dict]) -> dict:
    return {"user_id": user, "profile": "p", "initial_profile": "p0",
            "iterations": json.dumps(iterations), "valid_rank_initial": 3, "valid_rank_final": 3,
            "iterations_run": len(iterations) - 1, "accepted_updates": 0, "fallback": None,
            "prompt_tokens": prompt, "completion_tokens": completion, "seconds": seconds,
            "embedding": [0.0], "initial_embedding": [0.0], "text_model": "t", "embed_model": "e",
            "ranker": "embedding", "config_hash": ""}


#: u1: recorded with model seconds (iteration 0 = initialisation); u2: an old row — iteration 0
#: carries nothing, no model seconds anywhere.
PROFILES_ROWS = [
    _profile_row("u1", 300, 100, 5.0, [
        _iteration(0, 200, 50, 3.0, model_seconds=2.0, gpu_seconds=None),
        _iteration(1, 100, 50, 2.0, model_seconds=1.5, gpu_seconds=None)]),
    _profile_row("u2", 120, 30, 4.0, [
        _iteration(0, 0, 0, 0.0), _iteration(1, 40, 20, 1.0), _iteration(2, 20, 10, 0.5)]),
]


def _bundle(ws: Workspace, user: str, post_id: str, **fields: object) -> str:
    target = bundle_dir(ws.root / "generations", user, post_id)
    write_bundle(target, post_record(user, post_id, **fields),
                 packaged_catalog().platform("rednote"),
                 [("cover.png", Image.new("RGB", (16, 16), (9, 9, 9)))])
    return str(target.relative_to(ws.root))


def _as_version_2(ws: Workspace, path: str) -> None:
    """Rewrite a post.json as a version-2 file: no model or GPU seconds."""
    file = ws.root / path / POST_JSON
    data = json.loads(file.read_text(encoding="utf-8"))
    del data["model_seconds_by_stage"], data["gpu_seconds_by_stage"]
    data["schema_version"] = 2
    file.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Workspace, dict]:
    """A workspace with profiles for u1, u2, TailorMind's two posts (u2's a version-2 file),
    a profile-free post for u1, the scoring costs, and the report fields the section reads."""
    ws = Workspace.create(tmp_path / "ws")
    ws.write("profiles", pa.Table.from_pylist(PROFILES_ROWS, schema=PROFILES))
    new = _bundle(ws, "u1", "tm-1", seconds_by_stage={"ideate": 2.0, "writing": 6.0,
                                                      "images": 1.0},
                  tokens_by_stage={"ideate": 100, "writing": 300},
                  model_seconds_by_stage={"ideate": 1.5, "writing": 5.0, "images": 0.8})
    old = _bundle(ws, "u2", "tm-2", seconds_by_stage={"ideate": 4.0, "writing": 10.0,
                                                      "images": 3.0},
                  tokens_by_stage={"ideate": 200, "writing": 500})
    _as_version_2(ws, old)
    free = _bundle(ws, "u1", "pf-1", seconds_by_stage={"writing": 1.0},
                   tokens_by_stage={"writing": 10}, model_seconds_by_stage={"writing": 0.5},
                   gpu_seconds_by_stage={"writing": 0.25})
    cost.write_scoring_cost(ws.root / BENCH_DIR, ["u1", "u2"], {
        "tailormind": {"posts": 2, "wall_seconds": 4.0, "model_seconds": 3.0,
                       "gpu_seconds": None, "llm_tokens": 600, "answers": 6, "cache_hits": 2},
        "ground_truth": {"posts": 2, "wall_seconds": 1.0, "model_seconds": 0.5,
                         "gpu_seconds": None, "llm_tokens": 200, "answers": 6,
                         "cache_hits": 0}})
    report = {"users": ["u1", "u2"],
              "methods": [{"name": "tailormind", "label": "TailorMind"},
                          {"name": "ground_truth", "label": "Ground-truth UGC"},
                          {"name": "profile_free", "label": "Profile-free"}],
              "per_post": [{"method": "tailormind", "user_id": "u1", "path": new},
                           {"method": "tailormind", "user_id": "u2", "path": old},
                           {"method": "ground_truth", "user_id": "u1", "path": ""},
                           {"method": "ground_truth", "user_id": "u2", "path": ""},
                           {"method": "profile_free", "user_id": "u1", "path": free}]}
    return ws, report


def _settings():
    return load_config(environ={}, overrides={"bench": {"cost_tokens_per_gpu_second":
                                                        THROUGHPUT}})


def _rows(section: dict, method: str) -> dict[str, dict]:
    found = next(m for m in section["methods"] if m["name"] == method)
    return {row["key"]: row for row in found["stages"]}


def _cell(mean, total, n, not_recorded=0) -> dict:
    return {"mean": mean, "total": total, "n": n, "not_recorded": not_recorded}


def test_profiling_is_split_into_initialisation_and_refinement(recorded) -> None:
    ws, report = recorded
    rows = _rows(cost.build(ws, _settings(), report), "tailormind")
    init, refine = rows["profiling_init"], rows["profiling_refine"]
    assert init["per"] == "user" and init["units"] == 2
    # u1: 400 − 150 = 250 tokens, 5.0 − 2.0 = 3.0 s; u2: 150 − 90 = 60 tokens, 4.0 − 1.5 = 2.5 s
    assert init["llm_tokens"] == _cell(155.0, 310.0, 2)
    assert init["wall_seconds"] == _cell(2.75, 5.5, 2)
    assert refine["llm_tokens"] == _cell(120.0, 240.0, 2)
    assert refine["wall_seconds"] == _cell(1.75, 3.5, 2)
    # model seconds: u1 only; u2's old row did not record them — not recorded, not 0
    assert init["model_seconds"] == _cell(2.0, 2.0, 1, 1)
    assert refine["model_seconds"] == _cell(1.5, 1.5, 1, 1)
    assert init["gpu_seconds"] == _cell(None, None, 0, 2)  # no model ran on a GPU
    assert init["gpu_seconds_estimate"] == _cell(1.55, 3.1, 2)  # 250/100 and 60/100


def test_an_iteration_without_model_seconds_leaves_the_refinement_not_recorded() -> None:
    row = _profile_row("u3", 30, 10, 3.0, [
        _iteration(0, 20, 5, 2.0, model_seconds=1.0, gpu_seconds=0.5),
        _iteration(1, 5, 5, 1.0, model_seconds=0.25, gpu_seconds=0.125), _iteration(2, 0, 0, 0.0)])
    init, refine = cost.profile_units(row)
    assert init == {"llm_tokens": 30.0, "wall_seconds": 2.0, "model_seconds": 1.0,
                    "gpu_seconds": 0.5}
    assert refine == {"llm_tokens": 10.0, "wall_seconds": 1.0, "model_seconds": None,
                      "gpu_seconds": None}


def test_generation_stages_read_post_json_and_old_posts_are_not_recorded(recorded) -> None:
    ws, report = recorded
    rows = _rows(cost.build(ws, _settings(), report), "tailormind")
    assert [k for k in rows if k not in ("profiling_init", "profiling_refine")] == [
        "ideate", "writing", "images", "total", "judging"]
    assert rows["writing"]["per"] == "post" and rows["writing"]["units"] == 2
    assert rows["ideate"]["llm_tokens"] == _cell(150.0, 300.0, 2)
    assert rows["writing"]["llm_tokens"] == _cell(400.0, 800.0, 2)
    assert rows["writing"]["wall_seconds"] == _cell(8.0, 16.0, 2)
    assert rows["images"]["llm_tokens"] == _cell(0.0, 0.0, 2)  # no LLM call in that step
    assert rows["images"]["wall_seconds"] == _cell(2.0, 4.0, 2)
    # u2's post.json is version 2: its model seconds are not recorded
    assert rows["writing"]["model_seconds"] == _cell(5.0, 5.0, 1, 1)
    assert rows["images"]["model_seconds"] == _cell(0.8, 0.8, 1, 1)
    assert rows["writing"]["gpu_seconds_estimate"] == _cell(4.0, 8.0, 2)


def test_the_total_per_user_adds_profiling_and_generation(recorded) -> None:
    ws, report = recorded
    total = _rows(cost.build(ws, _settings(), report), "tailormind")["total"]
    # u1: 250 + 150 + 100 + 300 = 800 tokens, 3 + 2 + 2 + 6 + 1 = 14 s;
    # u2: 60 + 90 + 200 + 500 = 850 tokens, 2.5 + 1.5 + 4 + 10 + 3 = 21 s
    assert total["per"] == "user"
    assert total["llm_tokens"] == _cell(825.0, 1650.0, 2)
    assert total["wall_seconds"] == _cell(17.5, 35.0, 2)
    # u1: 2 + 1.5 + 1.5 + 5 + 0.8 = 10.8 model seconds; u2 has none recorded
    assert total["model_seconds"] == _cell(10.8, 10.8, 1, 1)


def test_judging_comes_from_the_scoring_costs_of_the_same_users(recorded) -> None:
    ws, report = recorded
    section = cost.build(ws, _settings(), report)
    judging = _rows(section, "tailormind")["judging"]
    assert judging["units"] == 2 and "2 of 6" in judging["note"]
    assert judging["llm_tokens"] == _cell(300.0, 600.0, 2)
    assert judging["wall_seconds"] == _cell(2.0, 4.0, 2)
    assert judging["model_seconds"] == _cell(1.5, 3.0, 2)
    assert judging["gpu_seconds"] == _cell(None, None, 0, 2)
    assert judging["gpu_seconds_estimate"] == _cell(3.0, 6.0, 2)
    # another set of users: the file is not this report's, so no judging row
    other = cost.build(ws, _settings(), {**report, "users": ["u1"]})
    assert "judging" not in _rows(other, "tailormind")


def test_ground_truth_and_profile_free_show_what_they_do_not_cost(recorded) -> None:
    ws, report = recorded
    section = cost.build(ws, _settings(), report)
    truth = next(m for m in section["methods"] if m["name"] == "ground_truth")
    assert truth["note"].startswith("no generation cost")
    assert [r["key"] for r in truth["stages"]] == ["judging"]
    assert truth["stages"][0]["llm_tokens"] == _cell(100.0, 200.0, 2)
    free = next(m for m in section["methods"] if m["name"] == "profile_free")
    assert free["note"].startswith("no profiling cost")
    rows = _rows(section, "profile_free")
    assert list(rows) == ["writing", "total"]  # no profiling rows; no scoring costs recorded
    assert rows["writing"]["gpu_seconds"] == _cell(0.25, 0.25, 1)  # reported by the backend
    assert rows["total"]["llm_tokens"] == _cell(10.0, 10.0, 1)


def test_no_scoring_costs_no_profiles_everything_not_recorded(recorded) -> None:
    ws, report = recorded
    (ws.root / BENCH_DIR / cost.SCORING_COST).unlink()
    no_cf = {**report, "methods": [{"name": "no_cf", "label": "w/o CF"}], "per_post": []}
    rows = _rows(cost.build(ws, _settings(), no_cf), "no_cf")
    assert list(rows) == ["profiling_init", "profiling_refine"]  # no posts, no judging
    assert rows["profiling_init"]["llm_tokens"] == _cell(None, None, 0, 2)  # no profiles__nocf


class _Table(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.inside, self.cell = False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("data-section") == "cost":
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_markdown_and_html_show_the_same_table(recorded) -> None:
    ws, report = recorded
    section = cost.build(ws, _settings(), report)
    found = section["table"]
    assert found["columns"][-1] == "GPU-s estimate (tokens ÷ 100 tok/s)"
    writing = next(r for r in found["rows"] if r[0] == "TailorMind" and "writing" in r[1])
    assert writing[2:] == ["post", "2", "400 (Σ 800)", "5.000 (Σ 5.000; 1 not recorded)",
                           "8.000 (Σ 16.000)", "not reported", "4.000 (Σ 8.000)"]
    assert ["Ground-truth UGC", "no generation cost: the held-out test item, as written"] == \
        next(r for r in found["rows"] if r[0] == "Ground-truth UGC")[:2]
    lines = cost.markdown(section, {})
    assert lines[0] == "## Cost (RQ5)" and f"![{cost.FIGURE}](plots/{cost.FIGURE}.png)" in lines
    md_rows = [line[2:-2].split(" | ") for line in lines if line.startswith("| ")]
    folder = Path(cost.__file__).parent / "html"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    html = env.get_template("report_cost.html.j2").render(
        report={"cost": section}, plots={cost.FIGURE: "data:image/png;base64,AAAA"})
    parser = _Table()
    parser.feed(html)
    assert md_rows == parser.rows == [found["columns"], *found["rows"]]
    assert 'src="data:image/png;base64,AAAA"' in html
    png = cost.figures(section, {})[cost.FIGURE]
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_measured_counts_the_judges_tokens_answers_and_model_time() -> None:
    judge = ScriptedText(otherwise="7", tokens=(11, 2))
    result, spent = cost.measured([judge, None, judge], lambda: judge.complete(
        [[{"role": "user", "content": f"post {i}"}] for i in range(3)]))
    assert [c.text for c in result] == ["7", "7", "7"]
    assert spent["llm_tokens"] == 3 * 13 and spent["answers"] == 3 and spent["cache_hits"] == 0
    assert spent["model_seconds"] == pytest.approx(judge.busy_seconds) and spent["model_seconds"] > 0
    assert spent["gpu_seconds"] is None  # a CPU (device-less) role reports no GPU time
    assert spent["wall_seconds"] >= spent["model_seconds"]


def test_a_role_on_a_cuda_device_reports_its_busy_time_as_gpu_time() -> None:
    role = ScriptedText(otherwise="ok", tokens=(1, 1))
    role.device = "cuda:0"
    _, spent = cost.measured([role], lambda: role.complete([[{"role": "user", "content": "x"}]]))
    assert role.on_gpu and role.gpu_seconds == role.busy_seconds > 0
    assert spent["gpu_seconds"] == pytest.approx(spent["model_seconds"])


def test_the_step_clock_charges_metered_model_time_to_the_current_step() -> None:
    readings = iter([(0.0, 0.0), (0.0, 0.0), (1.5, 0.5), (4.0, 0.5)])
    clock = StepClock(meter=lambda: next(readings))
    for label in ("inputs", "ideate", "writing", "bundle"):
        clock.switch(label)
    assert dict(clock.model_seconds) == {"inputs": 0.0, "ideate": 1.5, "writing": 2.5}
    assert dict(clock.gpu_seconds) == {"inputs": 0.0, "ideate": 0.5, "writing": 0.0}
    assert set(clock.seconds) == {"inputs", "ideate", "writing"}
