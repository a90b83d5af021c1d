"""The report's human section on a small bench (2 users × TailorMind and the ground truth):
ratings written to the store, then α, ρ and the means checked against values computed by hand
(the arithmetic is in the comments), the report files, ``bench report`` and the CSV export."""

from __future__ import annotations

import csv
import json

import pytest

from tailormind.bench import human
from tailormind.bench.methods import BENCH_DIR
from tailormind.bench.rating_set import anonymous_id
from tailormind.bench.ratings import RatingStore
from tailormind.bench.report import REPORT_HTML, REPORT_JSON, REPORT_MD
from tests.bench_fixture import ALPHA, HAND, RHO, small_bench

@pytest.fixture(scope="module")
def bench(profiled_ws, tmp_path_factory):
    return small_bench(profiled_ws, tmp_path_factory.mktemp("human"))


def rate_by_hand(ws, report) -> RatingStore:
    store = RatingStore.of(ws.root / BENCH_DIR)
    users = sorted(report["users"])
    for (method, n), by_rater in HAND.items():
        item = anonymous_id(store.secret(), method, users[n])
        for rater, (nov, aes, hal) in by_rater.items():
            store.save(rater, item, method, users[n], novelty=nov, aesthetic=aes,
                       hallucination=hal)
    return store


def test_judge_scores_are_what_the_hand_computation_assumes(bench) -> None:
    _, _, result = bench
    rows = {(r["method"], r["user_id"]): r for r in result.report["per_post"]}
    users = sorted(result.report["users"])
    for n in range(2):
        assert (rows["tailormind", users[n]]["judge_novelty"],
                rows["ground_truth", users[n]]["judge_novelty"]) == (0.8, 0.3)
        assert (rows["tailormind", users[n]]["judge_aesthetic"],
                rows["ground_truth", users[n]]["judge_aesthetic"]) == (0.6, 0.5)
        assert (rows["tailormind", users[n]]["hallucination"],
                rows["ground_truth", users[n]]["hallucination"]) == (1, 0)


def test_no_ratings_yet_says_how_to_start(bench) -> None:
    ws, settings, result = bench
    section = result.report["human"]
    assert section["ratings"] == 0 and section["posts"] == 4 and "dimensions" not in section
    assert "bench rate --workspace" in (ws.root / BENCH_DIR / REPORT_MD).read_text()


def test_alpha_rho_and_means_match_the_hand_computation(bench) -> None:
    ws, settings, result = bench
    rate_by_hand(ws, result.report)
    section = human.build(ws, settings, result.report)
    assert section["ratings"] == 8 and section["raters"] == ["ann", "bob"]
    assert section["posts_rated"] == 4
    for name, dim in section["dimensions"].items():
        assert dim["alpha"]["value"] == pytest.approx(ALPHA[name], abs=1e-6), name
        assert dim["alpha"]["units"] == 4
        assert dim["judge"]["rho"] == pytest.approx(RHO[name], abs=1e-6), name
        assert dim["judge"]["n"] == 4
        low, high = dim["judge"]["low"], dim["judge"]["high"]
        assert -1 <= low <= dim["judge"]["rho"] <= high <= 1
    novelty = section["dimensions"]["novelty"]["methods"]
    # means over posts of the raters' mean: TailorMind (4.5 + 4)/2, ground truth (1.5 + 3)/2
    assert novelty["tailormind"]["mean"] == pytest.approx(4.25)
    assert novelty["ground_truth"]["mean"] == pytest.approx(2.25)
    assert novelty["tailormind"]["n"] == 2 and novelty["tailormind"]["raters"] == 2
    assert novelty["tailormind"]["low"] == pytest.approx(4.0)  # bootstrap of {4.5, 4}
    assert novelty["tailormind"]["high"] == pytest.approx(4.5)


def test_bench_report_cli_rewrites_the_report_with_the_ratings(bench, cli) -> None:
    ws, _, _ = bench
    done = cli("bench", "report", "--workspace", ws.root, "--json")
    assert done.code == 0, done.err
    shown = json.loads(done.out)["human"]
    assert shown["dimensions"]["novelty"]["alpha"]["value"] == pytest.approx(ALPHA["novelty"])
    stored = json.loads((ws.root / BENCH_DIR / REPORT_JSON).read_text())
    assert stored["human"] == shown
    markdown = (ws.root / BENCH_DIR / REPORT_MD).read_text()
    assert "## Human evaluation" in markdown and "8 ratings by 2 rater(s)" in markdown
    assert f"{ALPHA['novelty']:.3f} (ordinal" in markdown
    assert f"{RHO['novelty']:+.3f}" in markdown
    html = (ws.root / BENCH_DIR / REPORT_HTML).read_text()
    assert 'data-human="agreement"' in html and f"{ALPHA['hallucination']:.3f}" in html
    assert 'alt="human_means"' in html and (ws.root / BENCH_DIR / "plots" / "human_means.png").is_file()


def test_export_csv(bench, cli, tmp_path) -> None:
    ws, _, result = bench
    store = RatingStore.of(ws.root / BENCH_DIR)
    item = anonymous_id(store.secret(), "tailormind", sorted(result.report["users"])[0])
    store.save("@cmd", item, "tailormind", sorted(result.report["users"])[0], novelty=2,
               aesthetic=2, hallucination=0, comment="=HYPERLINK(\"x\")")
    target = tmp_path / "ratings.csv"
    done = cli("bench", "rate", "--workspace", ws.root, "--export", target)
    assert done.code == 0, done.err
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert len(rows) == 9
    hostile = next(r for r in rows if r["rater"] == "'@cmd")
    assert hostile["comment"] == "'=HYPERLINK(\"x\")" and hostile["method"] == "tailormind"


def test_bench_report_prints_the_human_tables(bench, cli) -> None:
    ws, _, _ = bench
    done = cli("bench", "report", "--workspace", ws.root)
    assert done.code == 0, done.err
    assert "Human evaluation" in done.out and "Krippendorff" in done.out
    assert "(ordinal" in done.out and "(nominal" in done.out and "judge_novelty" in done.out


def test_bench_rate_refuses_what_it_cannot_serve(profiled_ws, cli, tmp_path) -> None:
    from tests.conftest import fresh

    ws = fresh(profiled_ws, tmp_path)
    done = cli("bench", "rate", "--workspace", ws.root)
    assert done.code == 2 and "no bench report to rate" in done.err
    assert "bench run --workspace" in done.err


def test_bench_rate_off_loopback_needs_a_token(bench, cli) -> None:
    ws, _, _ = bench
    done = cli("bench", "rate", "--workspace", ws.root, "--host", "0.0.0.0")
    assert done.code == 2 and "needs an access token" in done.err
