"""Generation end to end on a profiled synthetic workspace: a scripted writer (the dummy engine)
with the real MiniLM, card and slideshow roles; reflection's keep-the-best property; the bundle
and its preview; recorded fallbacks for a failing image model and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailormind.config import load_config
from tailormind.errors import ModelError, WorkspaceError
from tailormind.generation.bundle import bundle_problems, local_references
from tailormind.generation.pipeline import Generator
from tailormind.generation.reflection import Scored, objective, reflect
from tailormind.models.media import probe_video
from tailormind.models.roles import ImageGenerator
from tailormind.profiling.profiles import profile_users
from tests.conftest import fresh
from tests.fakes import ProfilingText, ScriptedWriter
from tests.workspaces import make_profiler, roles_with


class FailsOnDetailImages(ImageGenerator):
    """An image model that fails on every "detail" image (the second image of each draft)."""

    def __init__(self) -> None:
        super().__init__(backend="flaky", model_id="flaky")

    def _render(self, request):
        from PIL import Image

        if request.caption == "detail":
            raise ModelError("models.image: CUDA out of memory")
        return Image.new("RGB", (request.width, request.height), (40, 90, 160))


def test_a_post_bundle_is_complete_and_self_contained(generated_ws) -> None:
    ws, settings = generated_ws
    user = ws.read("profiles").column("user_id")[0].as_py()
    writer = ScriptedWriter()
    post = Generator(ws, settings, roles=roles_with(settings, writer)).generate(user)
    record = json.loads((post.path / "post.json").read_text(encoding="utf-8"))
    assert bundle_problems(post.path) == []
    assert record["user_id"] == user and record["kind"] == "post"
    assert record["platform"] == "rednote" and record["idea"]["type"] in record["ideation"]["subset"]
    assert [i["file"] for i in record["images"]] == ["cover.png", "image-2.png"]
    assert all(i["kind"] == "card" for i in record["images"])
    assert record["media_note"].startswith("images are typeset text cards")
    assert len(record["exemplars"]) == settings.generation.exemplar_top_k
    rounds = record["reflection"]["rounds"]
    assert 2 <= len(rounds) <= settings.generation.reflection_rounds + 1
    best = max(r["objective"] for r in rounds)
    assert record["reflection"]["best"]["objective"] == pytest.approx(best)
    assert record["reflection"]["clip_measured"] is False
    assert "not measured" in record["reflection"]["note"]
    assert writer.steps.count("revise") == len(rounds) - 1
    if len(rounds) <= settings.generation.reflection_rounds:  # greedy: stopped when no gain
        assert not rounds[-1]["best_so_far"]
    assert set(record["models"]) == {"text", "embed", "image", "video"}
    assert record["tokens_by_stage"]["ideate"] > 0 and record["tokens_by_stage"]["writing"] > 0
    html = (post.path / "preview.html").read_text(encoding="utf-8")
    refs = local_references(html)
    assert refs == ["cover.png", "image-2.png"] and record["title"] in html
    # same user and settings -> same post id, replaced whole
    again = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter())).generate(user)
    assert again.post_id == post.post_id and bundle_problems(again.path) == []


def test_a_video_fits_the_platform_and_plays(generated_ws) -> None:
    ws, settings = generated_ws
    user = ws.read("profiles").column("user_id")[1].as_py()
    post = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter())).generate(
        user, platform="bilibili")
    record = json.loads((post.path / "post.json").read_text(encoding="utf-8"))
    assert record["kind"] == "video" and bundle_problems(post.path) == []
    total = sum(s["duration_s"] for s in record["storyboard"])
    assert 8 <= total <= 45
    fixes = [f for d in record["drafts"] for f in d["fixes"]]
    assert any("clamped to 10 s" in f for f in fixes)  # the 90 s shot
    info = probe_video(post.path / "video.mp4")
    assert info.codec == "h264" and abs(info.duration_s - record["video"]["duration_s"]) < 0.2
    assert (info.width, info.height) == (1280, 720)
    assert "video.mp4" in local_references((post.path / "preview.html").read_text("utf-8"))


def test_a_failing_image_model_is_replaced_by_a_card_and_recorded(generated_ws) -> None:
    ws, settings = generated_ws
    user = ws.read("profiles").column("user_id")[2].as_py()
    post = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter(),
                                                FailsOnDetailImages())).generate(user)
    assert bundle_problems(post.path) == []
    assert [i.kind for i in post.record.images] == ["generated", "card"]
    assert any("image 2: flaky failed" in f and "typeset card stands in" in f
               for f in post.record.fallbacks)


def test_writer_answers_that_are_not_json_give_a_recorded_draft(generated_ws) -> None:
    ws, settings = generated_ws
    user = ws.read("profiles").column("user_id")[3].as_py()
    writer = ScriptedWriter(bad_json=True)
    post = Generator(ws, settings, roles=roles_with(settings, writer)).generate(user)
    record = post.record.to_json()
    assert bundle_problems(post.path) == []
    assert any("writer: no usable JSON" in f for f in record["fallbacks"])
    # every draft failed; greedy decoding stops after the first revision that gains nothing
    assert writer.stats["json_failed"] == len(record["reflection"]["rounds"]) == 2
    assert record["title"] and record["body"] and len(record["images"]) == 1
    fixes = record["drafts"][0]["fixes"]
    assert "title from the idea" in fixes and "image prompt from the title" in fixes


class LinkingWriter(ScriptedWriter):
    """The scripted writer whose every post body ends with three links."""

    LINKS = (" More: https://www.imdb.com/title/tt0113277/ javascript:alert(1) "
             "https://evil.example/x")

    def _post(self, call) -> str:
        answer = json.loads(super()._post(call))
        answer["body"] += self.LINKS
        return json.dumps(answer)


def test_a_post_keeps_allowlisted_links_and_records_each_removed_one(generated_ws,
                                                                     tmp_path) -> None:
    ws, settings = generated_ws
    settings = settings.with_overrides({"generation": {"link_allowlist": ["imdb.com"],
                                                       "reflection_rounds": 0}})
    user = ws.read("profiles").column("user_id")[4].as_py()
    post = Generator(ws, settings, roles=roles_with(settings, LinkingWriter()),
                     output_root=tmp_path).generate(user)
    record = post.record.to_json()
    assert record["body"].endswith(" More: https://www.imdb.com/title/tt0113277/")
    removed = [f for f in record["fallbacks"] if f.startswith("link removed")]
    assert removed == [f"link removed (in neither the source items nor "
                       f"generation.link_allowlist): {url}"
                       for url in ("javascript:alert(1)", "https://evil.example/x")]
    assert json.loads((post.path / "post.json").read_text("utf-8"))["fallbacks"] == \
        record["fallbacks"]


def test_unknown_user_and_unprofiled_user_are_clear_errors(generated_ws, profiled_ws,
                                                           tmp_path) -> None:
    ws, settings = generated_ws
    generator = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter()))
    with pytest.raises(WorkspaceError, match="unknown user 'nobody'"):
        generator.generate("nobody")
    sparse = fresh(profiled_ws, tmp_path)
    users = sparse.read("candidates").column("user_id").to_pylist()
    profile_users(sparse, settings, users=[users[0]], profiler=make_profiler(
        sparse, settings, ProfilingText()))
    other = next(u for u in users if u != users[0])
    with pytest.raises(WorkspaceError, match=f"user '{other}' has no profile"):
        Generator(sparse, settings, roles=roles_with(settings, ScriptedWriter())).generate(other)


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=6))
def test_reflection_never_returns_a_worse_version(objectives: list[float]) -> None:
    """A scripted writer whose versions score ``objectives`` in turn: the kept version is the
    first maximum, and every revision was asked from the best version so far."""
    versions = iter(range(1, len(objectives)))
    bases: list[int] = []

    def score(version: int) -> Scored[int]:
        return Scored(version, objectives[version], None, objectives[version])

    def revise(best: int, feedback: str) -> int:
        bases.append(best)
        assert "not measured" in feedback
        return next(versions)

    result = reflect(0, score, revise, rounds=len(objectives) - 1)
    assert result.best.objective == max(objectives)
    assert result.best_round == objectives.index(max(objectives))
    for n, base in enumerate(bases, start=1):
        assert objectives[base] == max(objectives[:n])
    # greedy decoding: the first round without a strict gain ends it, keeping the best so far
    stop = next((n for n in range(1, len(objectives))
                 if objectives[n] <= max(objectives[:n])), len(objectives) - 1)
    bases.clear()
    versions = iter(range(1, len(objectives)))
    greedy = reflect(0, score, revise, rounds=len(objectives) - 1, repeatable=True)
    assert [r.round for r in greedy.rounds] == list(range(stop + 1))
    assert len(bases) == stop  # one revision per round after the first draft
    kept = max(range(stop + 1), key=lambda n: (objectives[n], -n))  # the first maximum
    assert greedy.best.version == greedy.best_round == kept
    assert [r.best_so_far for r in greedy.rounds] == [True] + [
        objectives[n] > max(objectives[:n]) for n in range(1, stop + 1)]


@pytest.mark.parametrize(("objectives", "repeatable", "rounds_run", "kept", "revised_from"), [
    ([0.1, 0.3, 0.5, 0.4, 0.9], True, 4, 2, [0, 1, 2]),  # stops at the first round w/o a gain
    ([0.1, 0.3, 0.5, 0.4, 0.9], False, 5, 4, [0, 1, 2, 2]),  # sampling: every round runs
    ([0.2, 0.4, 0.6, 0.8], True, 4, 3, [0, 1, 2]),  # always improving: every round runs
    ([0.5, 0.5, 0.7], True, 2, 0, [0]),  # a tie is no gain: the first version stays
    ([0.6, 0.2, 0.9], False, 3, 2, [0, 0]),  # the worse version 1 is neither kept nor revised
])
def test_reflection_rounds_and_kept_version_from_a_scripted_judge(
        objectives: list[float], repeatable: bool, rounds_run: int, kept: int,
        revised_from: list[int]) -> None:
    """A scripted judge scores version n with ``objectives[n]``; the number of rounds run and
    the kept version are worked out by hand."""
    asked: list[int] = []

    def revise(best: int, feedback: str) -> int:
        asked.append(best)
        return len(asked)  # version n is the n-th revision

    result = reflect(0, lambda v: Scored(v, objectives[v], None, objectives[v]), revise,
                     rounds=len(objectives) - 1, repeatable=repeatable)
    assert len(result.rounds) == rounds_run and asked == revised_from
    assert result.best.version == result.best_round == kept
    assert result.best.objective == objectives[kept]


def test_objective_weights_clip_when_measured() -> None:
    assert objective(0.4, None, 1.0) == 0.4
    assert objective(0.4, 2.5, 1.0) == pytest.approx(0.7)
    assert objective(0.4, 1.25, 3.0) == pytest.approx((0.4 + 3 * 0.5) / 4)
    assert np.isclose(objective(0.2, 0.0, 0.0), 0.2)


def test_platform_and_kind_are_checked(generated_ws) -> None:
    from tailormind.errors import ConfigError

    ws, settings = generated_ws
    user = ws.read("profiles").column("user_id")[0].as_py()
    generator = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter()))
    with pytest.raises(ConfigError, match="unknown platform 'myspace'"):
        generator.generate(user, platform="myspace")
    with pytest.raises(ConfigError, match="unknown kind 'podcast'"):
        generator.generate(user, kind="podcast")
    assert load_config(environ={}).generation.platform == "rednote"


def test_progress_names_every_stage_and_can_stop_a_post(generated_ws, tmp_path) -> None:
    from tailormind.generation.bundle import GENERATIONS
    from tailormind.serve.api_jobs import total_steps

    ws, settings = generated_ws
    ws = fresh((ws.root, settings), tmp_path)
    user = ws.read("profiles").column("user_id")[0].as_py()
    generator = Generator(ws, settings, roles=roles_with(settings, ScriptedWriter()))
    stages: list[str] = []
    post = generator.generate(user, kind="video", progress=stages.append)
    rounds = len(post.record.reflection.rounds)
    assert stages[:4] == ["inputs", "exemplars", "ideate", "write_and_reflect"]
    assert stages[4:-2] == [f"write_and_reflect round {n}" for n in range(1, rounds)]
    assert stages[-2:] == ["media", "bundle"]
    assert len(stages) <= total_steps(settings.generation.reflection_rounds)

    class Stop(Exception):
        pass

    def stop_at(stage: str):
        def check(current: str) -> None:
            if current == stage:
                raise Stop(stage)
        return check

    user_dir = ws.root / GENERATIONS / user
    before = sorted(p.name for p in user_dir.iterdir())
    for stage in ("ideate", "media", "bundle"):
        with pytest.raises(Stop):
            generator.generate(user, kind="video", seed=77, progress=stop_at(stage))
        assert sorted(p.name for p in user_dir.iterdir()) == before  # no bundle, no stray mp4
