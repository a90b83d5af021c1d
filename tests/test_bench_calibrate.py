"""Judge calibration: pairs whose better member is known, scored by the bench's judge and the
embedding metrics. A flat judge must land at 0.5 and "no signal", an oracle that can tell the
pairs apart must get signal, the accuracy must match a hand computation, the pair builders must
build what they claim, and the report must say "no signal" / "self-judged" where it should and
give paired differences that match the per-post rows."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tailormind.bench.calibrate import (
    CALIBRATION_JSON,
    SCORERS,
    PairScorer,
    accuracy,
    build_pairs,
    calibrate_workspace,
    dimension_summary,
    judge_is_self,
    outcome,
)
from tailormind.bench.calibration_pairs import (
    FactPool,
    Pair,
    facts,
    repeat_phrase,
    shuffle_sentences,
    split_sentences,
    strip_punctuation,
    swap_fact,
)
from tailormind.bench.judge import Judge
from tailormind.bench.posts import item_as_post
from tailormind.bench.report import REPORT_HTML, REPORT_JSON, REPORT_MD
from tailormind.bench.run import run_bench
from tailormind.bench.users import all_users, select_users
from tailormind.core.bootstrap import paired_difference
from tailormind.generation.pipeline import Roles
from tailormind.models.registry import load_role
from tailormind.profiling.evidence import ItemFeatures
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh, tiny_text_env
from tests.fakes import Call, ProfilingText, ScriptedText, ScriptedWriter
from tests.workspaces import make_profiler

PAIRS = 30
JUDGE_KEYS = [s.key for specs in SCORERS.values() for s in specs if s.judge]


#: What the bench's judge asks: scores, and the hallucination check.
SCORE_KINDS = ("judge_novelty", "judge_coherence", "judge_aesthetic")
JUDGE_KINDS = (*SCORE_KINDS, "judge_hallucination")


def _post(call: Call) -> str:
    """The judged post: the body of the prompt's quoted ``post`` block."""
    return call.quoted("post")[0]


def flat_judge(model_id: str = "flat-judge") -> ScriptedText:
    """Always the same answer: 5 for every score, NONE for every hallucination check."""
    return ScriptedText({**dict.fromkeys(SCORE_KINDS, "5"), "judge_hallucination": " NONE"},
                        model_id=model_id, follows_json=False)


def prose_judge() -> ScriptedText:
    """A JSON judge that never answers JSON: every answer is a counted failure."""
    return ScriptedText(dict.fromkeys(JUDGE_KINDS, "I liked it a lot, really."),
                        model_id="prose-judge")


def oracle_judge() -> ScriptedText:
    """Tells pairs apart from the text it is given only. Aesthetic: a repeated word trigram
    (hashtags aside) or no punctuation -> 2, hashtags before the last line -> 4, else 9.
    Hallucination: quotes the first line of the post with a number or capitalised word the
    sources do not contain. Novelty and taste fit: always 5 (it cannot tell)."""
    return ScriptedText({"judge_aesthetic": _oracle_aesthetic,
                         "judge_hallucination": _oracle_claims,
                         "judge_novelty": "5", "judge_coherence": "5"},
                        model_id="oracle-judge", follows_json=False)


def _oracle_claims(call: Call) -> str:
    sources = "\n".join(call.quoted("source"))
    for line in _post(call).splitlines():
        if any(t not in sources for t in re.findall(r"\b\d+\b|\b[A-Z][a-z]+\b", line)):
            return " " + line
    return " NONE"


def _oracle_aesthetic(call: Call) -> str:
    post = _post(call)
    words = re.findall(r"(?<![#\w])\w+", post.lower())  # hashtags repeat the tags
    grams = list(zip(words, words[1:], words[2:], strict=False))
    if len(set(grams)) < len(grams) or not re.search(r"[.,!?]", post):
        return "2"
    return "4" if any(line.startswith("#") for line in post.splitlines()[:-1]) else "9"


@pytest.fixture(scope="module")
def cal(profiled_ws, tmp_path_factory):
    """A private copy of the synthetic workspace (no posts: the catalogue plays the posts)."""
    ws = fresh(profiled_ws, tmp_path_factory.mktemp("calibrate"))
    _, settings = profiled_ws
    settings = settings.with_overrides({"bench": {"calibration_pairs": PAIRS}})
    return ws, settings, load_role("embed", settings)


@pytest.fixture(scope="module")
def oracle(cal):
    ws, settings, embed = cal
    return calibrate_workspace(ws, settings, judge_model=oracle_judge(), embed=embed,
                               log=lambda m: None, reuse=False)


# -- (a) a flat judge ------------------------------------------------------------------------

def test_a_flat_judge_gets_at_most_chance_and_no_signal_everywhere(cal) -> None:
    ws, settings, embed = cal
    found = calibrate_workspace(ws, settings, judge_model=flat_judge(), embed=embed,
                                log=lambda m: None, reuse=False)
    assert set(found["dimensions"]) == {"coherence", "novelty", "aesthetic", "hallucination"}
    for name, dimension in found["dimensions"].items():
        assert dimension["pairs"] >= PAIRS, name
        judged = [e for e in dimension["scorers"].values() if e["judge"]]
        assert judged, name  # every dimension is scored by the judge too
        for entry in judged:
            assert entry["accuracy"] <= 0.5 and entry["signal"] is False, (name, entry)
            assert entry["ties"] == entry["n"] == dimension["pairs"]
            assert entry["low"] <= 0.5 <= entry["high"]
            for kind in (entry.get("by_kind") or {}).values():
                assert kind["accuracy"] <= 0.5 and not kind["signal"]


def test_a_judge_that_never_answers_json_is_counted_not_a_crash(cal) -> None:
    ws, settings, embed = cal
    found = calibrate_workspace(ws, settings, judge_model=prose_judge(), embed=embed,
                                log=lambda m: None, reuse=False)
    for dimension in found["dimensions"].values():
        for entry in (e for e in dimension["scorers"].values() if e["judge"]):
            assert entry["failed"] == entry["n"] and entry["accuracy"] == 0.5
            assert not entry["signal"]
    assert found["judge_stats"]["unparsed"] > 0


# -- (b) an oracle judge ---------------------------------------------------------------------

def test_an_oracle_judge_has_signal_where_it_can_tell(oracle) -> None:
    dims = oracle["dimensions"]
    hallucination = dims["hallucination"]["scorers"]["hallucination"]
    assert hallucination["signal"] and hallucination["low"] > 0.5
    aesthetic = dims["aesthetic"]["scorers"]["judge_aesthetic"]
    assert aesthetic["signal"] and aesthetic["accuracy"] > 0.75
    assert set(aesthetic["by_kind"]) == {"shuffled", "repeated", "unpunctuated"}
    for kind in ("repeated", "unpunctuated"):
        assert aesthetic["by_kind"][kind]["signal"], kind
        assert aesthetic["by_kind"][kind]["accuracy"] >= 0.9  # (a repeated hashtag run: a tie)
    # pooled = all kinds together
    assert aesthetic["n"] == sum(k["n"] for k in aesthetic["by_kind"].values())
    # what it cannot tell stays at chance; the embedding metric catches a near-copy
    assert not dims["novelty"]["scorers"]["judge_novelty"]["signal"]
    assert not dims["coherence"]["scorers"]["judge_coherence"]["signal"]
    assert dims["novelty"]["scorers"]["objective_novelty"]["signal"]
    assert not oracle["judge_self"]


# -- (c) accuracy by hand --------------------------------------------------------------------

def test_outcomes_and_accuracy_by_hand(cal) -> None:
    _, settings, _ = cal
    assert [outcome(0.9, 0.1), outcome(0.5, 0.5), outcome(0.2, 0.7), outcome(None, 0.3),
            outcome(0.4, float("nan"))] == [1.0, 0.5, 0.0, None, None]
    assert outcome(0.0, 1.0, lower_is_better=True) == 1.0  # fewer hallucinations win
    assert outcome(1.0, 0.0, lower_is_better=True) == 0.0
    found = accuracy([1.0, 0.5, 0.0, None, 1.0], settings)
    assert found["accuracy"] == pytest.approx((1 + 0.5 + 0 + 0.5 + 1) / 5)
    assert (found["correct"], found["wrong"], found["ties"], found["failed"], found["n"]) == \
        (2, 1, 1, 1, 5)
    values = np.array([1.0, 0.5, 0.0, 0.5, 1.0])
    rng = np.random.default_rng(settings.seeds.bench)
    means = values[rng.integers(0, 5, size=(settings.bench.bootstrap_resamples, 5))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert (found["low"], found["high"]) == pytest.approx((low, high), abs=1e-6)
    assert found["signal"] is False  # the interval includes 0.5
    perfect = accuracy([1.0] * 12, settings)
    assert perfect["signal"] and (perfect["low"], perfect["high"]) == (1.0, 1.0)
    flat = accuracy([0.5] * 12, settings)
    assert flat["accuracy"] == 0.5 and not flat["signal"] and not flat["inverted"]
    backwards = accuracy([0.0] * 12, settings)
    assert not backwards["signal"] and backwards["inverted"]


def lookup_judge(scores: dict[str, str]) -> ScriptedText:
    """Answers each aesthetic prompt with the score listed for its post."""
    return ScriptedText({"judge_aesthetic": lambda call: scores[_post(call)]}, model_id="lookup",
                        follows_json=False)


def test_a_tiny_fixed_set_of_pairs_scores_as_computed_by_hand(cal) -> None:
    ws, settings, embed = cal
    users = {u.user_id: u for u in all_users(ws)}
    user = next(iter(users))
    answers = {"A": "8", "a": "3", "B": "5", "b": "5", "C": "2", "c": "7", "D": "none", "d": "4"}
    pairs = [Pair("aesthetic", kind, user, upper, upper.lower(), "catalogue")
             for kind, upper in zip(["repeated", "repeated", "shuffled", "shuffled"], "ABCD",
                                    strict=True)]
    judge = Judge(lookup_judge(answers))
    scorer = PairScorer(features=ItemFeatures.load(ws), items={}, users=users, train={},
                        embed=embed, judge=judge, history_items=8)
    scored = {"judge_aesthetic": scorer.score(SCORERS["aesthetic"][0], pairs)}
    assert scored["judge_aesthetic"] == [(0.8, 0.3), (0.5, 0.5), (0.2, 0.7), (None, 0.4)]
    summary = dimension_summary("aesthetic", pairs, scored, "judge: lookup", "embedding: x",
                                False, settings)["scorers"]["judge_aesthetic"]
    # outcomes 1, ½ (tie), 0, ½ (failed): accuracy 2/4
    assert summary["accuracy"] == 0.5
    assert (summary["correct"], summary["ties"], summary["wrong"], summary["failed"]) == \
        (1, 1, 1, 1)
    assert summary["by_kind"]["repeated"]["accuracy"] == 0.75  # 1 and ½
    assert summary["by_kind"]["shuffled"]["accuracy"] == 0.25  # 0 and ½
    assert judge.stats["unparsed"] == 1


# -- (d) the pair builders -------------------------------------------------------------------

TEXT = ("Heat (1995) pits Al Pacino against Robert De Niro. The diner scene is quiet and tense!\n"
        "Directed by Michael Mann, it runs 170 minutes.\n#crime #heist")


def test_facts_and_a_swapped_fact() -> None:
    found = facts(TEXT)
    assert ("year", "1995") in found and ("number", "170") in found
    assert ("name", "Al Pacino") in found and ("name", "Robert De Niro") in found
    assert ("name", "The") not in found and ("name", "Directed") not in found  # sentence starts
    pool = FactPool.from_texts({"a": "Alien (1979), by Ridley Scott.", "b": "Jaws (1975)."})
    rng = np.random.default_rng(0)
    swapped, detail = swap_fact(TEXT, "Heat (1995): Al Pacino, Robert De Niro; 170 min",
                                pool, rng)
    assert detail["fact"] == "year" and detail["original"] == "1995" and detail["supported"]
    assert detail["replacement"] in {"1979", "1975"}
    assert swapped == TEXT.replace("1995", detail["replacement"]) and swapped != TEXT
    assert "1995" not in swapped
    # a replacement the text or the sources already contain is never drawn
    assert swap_fact("Made in 1979.", "1975", pool, rng) is None
    # no year to swap: a name from another item, not one the sources know
    swapped, detail = swap_fact("A film with Al Pacino.", "Al Pacino", pool,
                                np.random.default_rng(1))
    assert detail == {"fact": "name", "original": "Al Pacino", "replacement": "Ridley Scott",
                      "supported": True}
    assert swapped == "A film with Ridley Scott."


def test_degradations_do_what_they_say() -> None:
    rng = np.random.default_rng(3)
    sentences, _ = split_sentences(TEXT)
    assert len(sentences) == 4
    for seed in range(5):
        shuffled = shuffle_sentences(TEXT, np.random.default_rng(seed))
        again, _ = split_sentences(shuffled)
        assert sorted(again) == sorted(sentences) and again != sentences
    assert shuffle_sentences("One sentence only.", rng) is None
    repeated = repeat_phrase(TEXT, rng)
    added = len(repeated.split()) - len(TEXT.split())
    assert 3 <= added <= 10 and added % 2 == 0
    words, k = repeated.split(), added // 2
    starts = [i for i in range(len(words) - 3 * k + 1)
              if words[i:i + k] == words[i + k:i + 2 * k] == words[i + 2 * k:i + 3 * k]]
    assert starts  # one phrase said three times in a row
    i = starts[0]
    assert " ".join(words[:i + k] + words[i + 3 * k:]) == " ".join(TEXT.split())
    stripped = strip_punctuation(TEXT)
    assert not re.search(r"[^\w\s]", stripped)
    assert re.findall(r"\w+", stripped) == re.findall(r"\w+", TEXT)
    assert strip_punctuation("no marks here") is None


def test_built_pairs_are_what_they_claim(cal) -> None:
    ws, settings, embed = cal
    features = ItemFeatures.load(ws)
    items = {r["item_id"]: r for r in ws.read("items").to_pylist()}
    users = {u.user_id: u for u in all_users(ws)}
    pairs, info = build_pairs(ws.root, users, features, items, embed, settings)
    assert info["posts"] == 0  # no bundles: the catalogue plays the posts
    assert {name: len(found) for name, found in pairs.items()} == dict.fromkeys(pairs, PAIRS)
    for pair in pairs["hallucination"]:
        detail = pair.detail
        assert detail["original"] != detail["replacement"]
        assert pair.worse == pair.better.replace(detail["original"], detail["replacement"]) or \
            re.sub(rf"\b{detail['original']}\b", detail["replacement"], pair.better) == pair.worse
        assert detail["replacement"].lower() not in pair.better.lower()
        assert pair.sources == (pair.left_out,) and pair.better == item_as_post(items[pair.left_out])
    catalogue = features.matrix / np.linalg.norm(features.matrix, axis=1, keepdims=True)
    for pair in pairs["novelty"][:10]:
        vector = embed.embed([pair.better])[0]
        sims = catalogue @ vector
        sims[features.index[pair.left_out]] = -np.inf  # its own item is not its nearest
        assert pair.worse == item_as_post(items[features.ids[int(np.argmax(sims))]])
    for pair in pairs["coherence"]:
        user = users[pair.user_id]
        other = pair.detail["other_item"]
        assert pair.detail["other_user"] != pair.user_id
        assert pair.left_out in {*user.history, user.target}  # the user's own item
        assert other not in {*user.history, user.target} and other in set(
            users[pair.detail["other_user"]].history) | {users[pair.detail["other_user"]].target}
        assert pair.worse == item_as_post(items[other])
    kinds = [p.kind for p in pairs["aesthetic"]]
    assert {k: kinds.count(k) for k in set(kinds)} == {"shuffled": 10, "repeated": 10,
                                                      "unpunctuated": 10}


def test_a_rerun_reuses_the_saved_calibration(cal, oracle) -> None:
    ws, settings, embed = cal
    judge = flat_judge("flat-judge-rerun")
    logs: list[str] = []
    first = calibrate_workspace(ws, settings, judge_model=judge, embed=embed, log=logs.append)
    calls = len(judge.calls)
    assert calls > 0 and not any("reusing" in m for m in logs)
    again = calibrate_workspace(ws, settings, judge_model=judge, embed=embed, log=logs.append)
    assert len(judge.calls) == calls and any("reusing" in m for m in logs)
    assert again["dimensions"] == first["dimensions"]
    saved = json.loads((ws.root / "bench" / CALIBRATION_JSON).read_text())
    assert len(saved["pairs"]) == sum(d["pairs"] for d in first["dimensions"].values())
    more = settings.with_overrides({"bench": {"calibration_pairs": PAIRS + 3}})
    changed = calibrate_workspace(ws, more, judge_model=judge, embed=embed, log=logs.append)
    assert len(judge.calls) > calls and changed["pairs_per_dimension"] == PAIRS + 3


def test_self_judged_follows_the_models(cal) -> None:
    _, settings, _ = cal
    text = {"backend": "openai", "model": "qwen"}
    assert judge_is_self(settings)  # bench.judge unset: the text role judges
    assert judge_is_self(settings, text, dict(text))
    assert not judge_is_self(settings, {"backend": "openai", "model": "llama"}, text)
    # no posts to say who wrote: the configured text role (the embedded SmolLM2 here)
    assert judge_is_self(settings, {"backend": "smollm2", "model": "SmolLM2-135M-Instruct"})
    assert not judge_is_self(settings, {"backend": "scripted", "model": "oracle-judge"})
    other = settings.with_overrides({"bench": {"judge": {"backend": "openai", "model": "x"}}})
    assert not judge_is_self(other)
    same = settings.with_overrides({"models": {"text": {"backend": "openai", "model": "x"}},
                                    "bench": {"judge": {"backend": "openai", "model": "x"}}})
    assert judge_is_self(same)


# -- (e), (f) the bench report ---------------------------------------------------------------

class SelfJudgingWriter(ScriptedWriter):
    """The scripted writer, also asked to judge: always 5 / no claims (so, flat)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers.update({**dict.fromkeys(SCORE_KINDS, '{"score": 5}'),
                             "judge_hallucination": '{"unsupported_claims": []}'})


@pytest.fixture(scope="module")
def reports(profiled_ws, tmp_path_factory):
    """The bench on 3 users and 3 methods: judged by the writer itself (flat), then re-scored
    by the oracle (posts reused)."""
    ws = fresh(profiled_ws, tmp_path_factory.mktemp("bench-calibrate"))
    _, settings = profiled_ws
    settings = settings.with_overrides({"bench": {"calibration_pairs": PAIRS}})
    chosen = [u.user_id for u in select_users(ws, 3, settings.seeds.bench)]
    profile_users(ws, settings, users=chosen, profiler=make_profiler(ws, settings, ProfilingText()))
    roles = Roles.load(settings, kinds=("post",))
    roles.text = SelfJudgingWriter()
    methods = ["tailormind", "ground_truth", "no_rag"]
    selfish = run_bench(ws, settings, users=3, methods=methods, roles=roles,
                        judge_model=roles.text, log=lambda m: None)
    files = {name: (ws.root / "bench" / name).read_text()
             for name in (REPORT_MD, REPORT_HTML, REPORT_JSON)}
    roles.text = ScriptedWriter()
    judged = run_bench(ws, settings, users=3, methods=methods, roles=roles,
                       judge_model=oracle_judge(), log=lambda m: None)
    return ws, settings, selfish, files, judged


def _section(markdown: str, heading: str) -> str:
    return markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_the_report_says_self_judged_and_no_signal(reports) -> None:
    _, _, selfish, files, _ = reports
    report = json.loads(files[REPORT_JSON])
    assert report["judge_self"] is True and report["calibration"]["judge_self"] is True
    assert report["judge"].endswith("(self-judged)")
    for name in ("novelty", "aesthetic", "hallucination"):
        for metric in report["dimensions"][name]["metrics"]:
            if metric["judge"]:
                assert metric["source"].endswith("(self-judged)")
                assert metric["label"].endswith("(self-judged)")
                assert metric["calibration"]["signal"] is False
                cells = [v[metric["key"]] for v in report["dimensions"][name]["rows"].values()]
                # the numbers stay, labelled
                assert all(c["signal"] is False and c["mean"] is not None for c in cells)
    markdown, html = files[REPORT_MD], files[REPORT_HTML]
    assert "## Calibration of the judge (self-judged)" in markdown
    assert "Calibration of the judge (self-judged)</h2>" in html
    novelty = _section(markdown, "Novelty\n")
    header = next(line for line in novelty.splitlines() if line.startswith("| method"))
    assert "Judge novelty/interestingness [0, 1] (self-judged)" in header
    rows = [line for line in novelty.splitlines() if line.startswith("| ")][1:]
    assert rows and all(line.split(" | ")[1] == "no signal" for line in rows[1:])
    calibration = _section(markdown, "Calibration of the judge")
    judged = [line for line in calibration.splitlines()
              if line.startswith("| ") and "(self-judged)" in line]
    assert len(judged) >= 4 and all("**no signal" in line for line in judged)
    assert html.count("no signal") >= len(judged) + 3
    assert "judge_self" in files[REPORT_JSON]
    # the embedding columns keep their means
    assert report["dimensions"]["coherence"]["rows"]["tailormind"]["text_coherence"].get(
        "signal") is None


def test_a_calibrated_judge_shows_its_numbers(reports) -> None:
    ws, _, _, _, judged = reports
    report = judged.report
    assert report["judge_self"] is False and "self-judged" not in report["judge"]
    hallucination = report["dimensions"]["hallucination"]
    assert hallucination["metrics"][0]["calibration"]["signal"] is True
    markdown = (ws.root / "bench" / REPORT_MD).read_text()
    section = _section(markdown, "Hallucination\n")
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert rows and not any("no signal" in line for line in rows)
    assert "self-judged" not in markdown
    # the oracle cannot tell novelty: that column says so
    novelty = report["dimensions"]["novelty"]["rows"]["tailormind"]["judge_novelty"]
    assert novelty["signal"] is False and novelty["mean"] == 0.5


def test_paired_differences_match_a_hand_computation(reports) -> None:
    _, settings, _, _, judged = reports
    report = judged.report
    rows = report["per_post"]
    content = report["paired"]["content"]
    others = {"ground_truth", "no_rag"}
    keys = {"text_coherence", "objective_novelty", "judge_novelty", "judge_aesthetic",
            "hallucination"}
    assert {(e["metric"], e["b"]) for e in content} == {(k, o) for k in keys for o in others}
    cfg = settings.bench
    for entry in content:
        mine = {r["user_id"]: r[entry["metric"]] for r in rows if r["method"] == "tailormind"
                and r[entry["metric"]] is not None}
        theirs = {r["user_id"]: r[entry["metric"]] for r in rows if r["method"] == entry["b"]
                  and r[entry["metric"]] is not None}
        users = sorted(set(mine) & set(theirs))
        differences = [mine[u] - theirs[u] for u in users]
        assert entry["users"] == users and entry["n"] == len(users)
        assert entry["difference"] == pytest.approx(np.mean(differences), abs=1e-6)
        assert entry["wins"] == sum(d > 0 for d in differences)
        assert entry["losses"] == sum(d < 0 for d in differences)
        by_hand = paired_difference([mine[u] for u in users], [theirs[u] for u in users],
                                    resamples=cfg.bootstrap_resamples, alpha=1 - cfg.confidence,
                                    seed=settings.seeds.bench)
        assert (entry["low"], entry["high"]) == pytest.approx(
            (by_hand.difference.low, by_hand.difference.high), abs=1e-6)
    profiling = report["paired"]["profiling"]
    assert {(e["a"], e["b"]) for e in profiling} >= {("tailormind_hybrid", "hybrid_no_profile"),
                                                     ("tailormind", "no_refinement")}
    per_user = report["per_user_profiling"]
    for entry in profiling:
        a = {r["user_id"]: r[entry["metric"]] for r in per_user if r["method"] == entry["a"]}
        b = {r["user_id"]: r[entry["metric"]] for r in per_user if r["method"] == entry["b"]}
        users = sorted(set(a) & set(b))
        assert entry["n"] == len(users) == 3
        assert entry["difference"] == pytest.approx(np.mean([a[u] - b[u] for u in users]),
                                                    abs=1e-6)
    markdown = (judged.paths["md"]).read_text()
    section = _section(markdown, "Paired differences")
    gt = next(e for e in content if e["metric"] == "text_coherence" and e["b"] == "ground_truth")
    assert f"{gt['difference']:+.3f} [{gt['low']:+.3f}, {gt['high']:+.3f}]" in section
    assert "### Paired: profiling" in section and "### Paired: coherence" in section
    html = judged.paths["html"].read_text()
    assert 'data-paired="profiling"' in html and 'data-calibration="judge"' in html


# -- the command -----------------------------------------------------------------------------

def test_bench_calibrate_bad_input_is_one_line(profiled_ws, tmp_path, cli) -> None:
    result = cli("bench", "calibrate", "-w", tmp_path / "nowhere")
    assert result.code == 2 and "is not a workspace" in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    ws = fresh(profiled_ws, tmp_path)
    ws.table_path("item_features").unlink()  # no `profile describe` yet
    result = cli("bench", "calibrate", "-w", ws.root)
    assert result.code == 2 and "has no item descriptions" in result.err, result.err
    assert "Traceback" not in result.err


def test_bench_calibrate_command(profiled_ws, tmp_path, monkeypatch, cli) -> None:
    ws = fresh(profiled_ws, tmp_path)
    _, settings = profiled_ws
    # a tiny random LM as text role and judge, asked in plain text like the embedded SmolLM2
    tiny_text_env(monkeypatch, settings, tmp_path / "llm",
                  MODELS__TEXT__OPTIONS__FOLLOWS_JSON="false")
    result = cli("bench", "calibrate", "-w", ws.root, "--json", "--pairs", "10")
    assert result.code == 0, result.err[-3000:]
    found = json.loads(result.out)  # progress went to stderr
    assert "answers to do" in result.err
    assert found["judge_self"] is True and found["judge"].endswith("(self-judged)")
    for name, dimension in found["dimensions"].items():
        assert dimension["pairs"] >= 10, name
        for entry in dimension["scorers"].values():
            assert {"accuracy", "low", "high", "n", "signal", "failed"} <= set(entry)
            assert entry["n"] == dimension["pairs"]
            if not entry["signal"]:
                assert entry["low"] <= 0.5 or entry["inverted"]
    table = cli("bench", "calibrate", "-w", ws.root, "--pairs", "10")
    assert table.code == 0 and "reusing" in table.err
    assert "Judge calibration (self-judged)" in table.out and "objective_novelty" not in \
        table.out and "Objective novelty" in table.out
