"""``profile eval``'s paired differences: every comparison over the same users, matched by user,
with the bootstrap interval; the per-user ranks stay out of the JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

import tailormind.profiling.evaluate as evaluate
from tailormind.cf.data import load_cf_data
from tailormind.cf.evaluate import Bootstrap, PerUser
from tailormind.models.registry import load_role
from tailormind.profiling.evaluate import EvalReport, evaluate_profiles, variant_tables
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh
from tests.fakes import ProfilingText, ReverseRanker
from tests.workspaces import make_profiler
from tests.paired_reference import numpy_interval

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
LLM = "LLM ranker (refined profile)"


def per_user_value(ranks: np.ndarray, metric: str) -> np.ndarray:
    k = int(metric.split("@")[1])
    hit = ranks < k
    return hit * 1.0 if metric.startswith("recall") else np.where(hit, 1 / np.log2(ranks + 2.0), 0.0)


@pytest.fixture(scope="module")
def evaluated(profiled_ws, tmp_path_factory):
    """Profiles for a seeded sample of 16 of the 24 users, a ``nocf`` variant on 8 of them, and
    the LLM ranker (a dummy listwise engine: the real ranker's windows and parsing) on 3."""
    ws = fresh(profiled_ws, tmp_path_factory.mktemp("paired"))
    _, settings = profiled_ws
    profile_users(ws, settings, sample=16, profiler=make_profiler(ws, settings, ProfilingText()))
    users = sorted(ws.read("profiles", columns=["user_id"]).column("user_id").to_pylist())
    profile_users(ws, settings, users=users[:8], variant="nocf",
                  profiler=make_profiler(ws, settings, ProfilingText(init="Likes quiet films.")))
    patch = pytest.MonkeyPatch()
    patch.setattr(evaluate, "load_role",
                  lambda role, s: ReverseRanker() if role == "text" else load_role(role, s))
    try:
        report = evaluate_profiles(ws, settings, variant_tables(ws), llm_ranker_users=3)
    finally:
        patch.undo()
    return ws, settings, report


def entries(report: EvalReport | list[dict], a: str, b: str,
            users: str = "profiled") -> dict[str, dict]:
    paired = report if isinstance(report, list) else report.paired
    return {p["metric"]: p for p in paired if (p["a"], p["b"], p["users"]) == (a, b, users)}


def test_every_comparison_is_a_paired_difference_on_the_same_users(evaluated) -> None:
    _, _, report = evaluated
    rows = {r["method"]: r for r in report.rows}
    expected = [
        ("hybrid", "hybrid w/o profile", "profiled"),
        ("profile (refined)", "profile (init)", "profiled"),
        ("hybrid", "hybrid (init profile)", "profiled"),
        ("profile (refined, nocf)", "profile (refined)", "profiled"),
        ("hybrid (nocf)", "hybrid", "profiled"),
        (LLM, "profile (refined)", "profiled"),
        ("hybrid", "hypergraph", "profiled"),
        ("hypergraph", "popularity", "profiled"),
        ("hypergraph", "popularity", "all"),
        ("hybrid w/o profile", "hypergraph", "all"),
    ]
    assert (report.users_profiled, report.users_all) == (16, 24)
    for a, b, users in expected:
        assert list(entries(report, a, b, users)) == list(METRICS), (a, b, users)
    for p in report.paired:
        a, b, metric = rows[p["a"]], rows[p["b"]], p["metric"]
        assert p["confidence"] == 0.95
        if p["users"] == "all":
            assert p["n"] == report.users_all
            assert p["difference"] == pytest.approx(a["all"][metric] - b["all"][metric])
        elif a.get("main_on_same_users"):  # a variant / the LLM ranker: against the main table
            main = a["main_on_same_users"]
            assert main["method"] == p["b"] and p["n"] == main["users"] == a["users"]
            assert p["difference"] == pytest.approx(a["sample"][metric] - main[metric])
        else:
            assert p["n"] == report.users_profiled
            assert p["difference"] == pytest.approx(a["sample"][metric] - b["sample"][metric])
    assert entries(report, LLM, "profile (refined)")["recall@20"]["n"] == 3
    assert entries(report, "hybrid (nocf)", "hybrid")["ndcg@10"]["n"] == 8


def embedding_ranks(ws, key: str, user_ids: list[str] | None = None) -> dict[str, int]:
    """user id -> 0-based test rank of the profiles table's ``key`` vector, computed directly
    from the item embeddings and the test candidate sets."""
    data = load_cf_data(ws)
    features = ItemFeatures.load(ws)
    items = features.matrix[features.rows(data.item_ids)].astype(np.float64)
    profiles = {p["user_id"]: p for p in ws.read("profiles").to_pylist()}
    out = {}
    for row, user in enumerate(data.test.users.tolist()):
        uid = data.user_ids[user]
        if uid in profiles and (user_ids is None or uid in user_ids):
            scores = items[data.test.items[row]] @ np.asarray(profiles[uid][key])
            out[uid] = int((scores[1:] >= scores[0]).sum())
    return out


def assert_matches(entry_by_metric: dict[str, dict], a: np.ndarray, b: np.ndarray, boot) -> None:
    for metric in METRICS:
        d = per_user_value(a, metric) - per_user_value(b, metric)
        got = entry_by_metric[metric]
        assert got["n"] == len(d)
        assert got["difference"] == pytest.approx(d.mean())
        assert (got["low"], got["high"]) == pytest.approx(
            numpy_interval(d, boot.resamples, boot.confidence, boot.seed))
        assert (got["wins"], got["losses"]) == (int((d > 0).sum()), int((d < 0).sum()))


def test_the_refinement_interval_from_ranks_computed_here(evaluated) -> None:
    """profile (refined) − profile (init): per-user ranks from the profiles table, the item
    embeddings and the test sets, computed directly; the interval by numpy with the config's B,
    confidence and seed (users in index order, as the report pairs them)."""
    ws, settings, report = evaluated
    refined, initial = embedding_ranks(ws, "embedding"), embedding_ranks(ws, "initial_embedding")
    order = sorted(refined, key=load_cf_data(ws).user_ids.index)
    assert_matches(entries(report, "profile (refined)", "profile (init)"),
                   np.array([refined[u] for u in order]), np.array([initial[u] for u in order]),
                   Bootstrap.of(settings))


def test_the_llm_ranker_pair_is_on_its_own_users(evaluated, monkeypatch) -> None:
    """The LLM ranker's per-user ranks (the same dummy engine run again here) against the refined
    profile's embedding ranks on the same 3 users."""
    ws, settings, report = evaluated
    data = load_cf_data(ws)
    profiles = ws.read("profiles").to_pylist()
    monkeypatch.setattr(evaluate, "load_role", lambda role, s: ReverseRanker())
    row = evaluate._llm_ranker_row(data, settings, ItemFeatures.load(ws), profiles, 3)
    for metric in METRICS:  # the returned per-user ranks are the ones behind its metrics
        assert row["sample"][metric] == pytest.approx(
            per_user_value(np.asarray(row["ranks"]), metric).mean())
    llm = dict(zip(row["user_ids"], np.asarray(row["ranks"]).tolist(), strict=True))
    refined = embedding_ranks(ws, "embedding", list(llm))
    order = sorted(llm, key=data.user_ids.index)
    assert_matches(entries(report, LLM, "profile (refined)"), np.array([llm[u] for u in order]),
                   np.array([refined[u] for u in order]), Bootstrap.of(settings))


def test_pairing_follows_the_users_not_their_order(evaluated) -> None:
    _, settings, report = evaluated
    boot = Bootstrap.of(settings)
    hybrid = report.per_user[("hybrid", "profiled")]
    plain = report.per_user[("hybrid w/o profile", "profiled")]
    assert np.array_equal(hybrid.users, plain.users)
    before = list(report.paired)
    order = np.random.default_rng(0).permutation(len(plain.users))
    # the same users, listed in another order with their values: the same pairs
    report.per_user[("hybrid w/o profile", "profiled")] = PerUser(
        plain.users[order], {k: v[order] for k, v in plain.values.items()})
    report.paired = []
    report.pair("hybrid", "hybrid w/o profile", "profiled", boot)
    assert report.paired == [p for p in before if (p["a"], p["b"]) == ("hybrid", "hybrid w/o profile")]
    # values moved to other users: not the same comparison any more (the mean difference is
    # the same by construction, mean(a) − mean(b); the pairing shows in wins/losses and interval)
    report.per_user[("hybrid w/o profile", "profiled")] = PerUser(
        plain.users, {k: v[order] for k, v in plain.values.items()})
    report.paired = []
    report.pair("hybrid", "hybrid w/o profile", "profiled", boot)
    shuffled = entries(report, "hybrid", "hybrid w/o profile")
    original = entries(before, "hybrid", "hybrid w/o profile")
    assert any((shuffled[m]["wins"], shuffled[m]["losses"], shuffled[m]["low"], shuffled[m]["high"])
               != (original[m]["wins"], original[m]["losses"], original[m]["low"], original[m]["high"])
               for m in METRICS)
    report.per_user[("hybrid w/o profile", "profiled")] = plain
    report.paired = before


def test_json_has_the_paired_list_and_no_per_user_ranks(evaluated) -> None:
    _, _, report = evaluated
    data = asdict(report)
    assert data["paired"] == report.paired and "per_user" not in data
    text = json.dumps(data)  # serialisable: no arrays left anywhere (the LLM row's ranks popped)
    llm = next(r for r in data["rows"] if r["method"] == LLM)
    assert "ranks" not in llm and "user_ids" not in llm
    assert len(text) < 200_000


def test_cli_eval_json_and_text_carry_the_paired_differences(evaluated, cli, monkeypatch) -> None:
    ws, settings, _ = evaluated
    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(settings.models.cache_dir))
    monkeypatch.setenv("TAILORMIND_BENCH__BOOTSTRAP_RESAMPLES", "300")
    result = cli("profile", "eval", "--workspace", ws.root, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    rows = {r["method"]: r for r in report["rows"]}
    hybrid = {p["metric"]: p for p in report["paired"]
              if (p["a"], p["b"], p["users"]) == ("hybrid", "hybrid w/o profile", "profiled")}
    assert list(hybrid) == list(METRICS)
    assert hybrid["ndcg@10"]["difference"] == pytest.approx(
        rows["hybrid"]["sample"]["ndcg@10"] - rows["hybrid w/o profile"]["sample"]["ndcg@10"])
    assert {(p["a"], p["b"]) for p in report["paired"]} >= {
        ("profile (refined)", "profile (init)"), ("hybrid", "hybrid (init profile)"),
        ("profile (refined, nocf)", "profile (refined)"), ("hybrid (nocf)", "hybrid")}
    text = cli("profile", "eval", "--workspace", ws.root)
    assert text.code == 0, text.err
    assert "paired differences: a − b over the same users, 95% paired-bootstrap interval" in text.out
    line = next(x for x in text.out.splitlines()
                if "hybrid − hybrid w/o profile" in x and "ndcg@10" in x)
    e = hybrid["ndcg@10"]
    assert "profiled" in line and f"{e['difference']:+.4f}" in line
    assert f"[{e['low']:+.4f}, {e['high']:+.4f}]" in line and f"{e['wins']}/{e['losses']}" in line
    assert any("hypergraph − popularity" in x and " all " in x for x in text.out.splitlines())


def test_eval_changes_nothing_and_fit_saves_the_weights_eval_then_uses(evaluated, cli, tmp_path,
                                                                       monkeypatch) -> None:
    """`profile eval` only evaluates; `profile fit` (also a pipeline stage) fits and saves."""
    from tailormind.profiling.fusion import FUSION_ARTIFACT

    ws, settings, _ = evaluated
    ws = fresh((ws.root, settings), tmp_path)
    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(settings.models.cache_dir))
    monkeypatch.setenv("TAILORMIND_BENCH__BOOTSTRAP_RESAMPLES", "100")
    assert not ws.has_artifact(FUSION_ARTIFACT)
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    first = cli("profile", "eval", "--workspace", ws.root, "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["fusion_source"] == "fit in memory (not saved)"
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == before

    fit = cli("profile", "fit", "--workspace", ws.root, "--json")
    assert fit.code == 0, fit.err
    weights = json.loads(fit.out)["weights"]
    assert type(ws).open(ws.root).has_artifact(FUSION_ARTIFACT)
    again = json.loads(cli("profile", "eval", "--workspace", ws.root, "--json").out)
    assert again["fusion_source"] == "saved by profile fit"
    assert again["fusion_weights"] == weights == json.loads(first.out)["fusion_weights"]
