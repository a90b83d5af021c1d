"""Item descriptions: passthrough, summaries, images and video through the describe role,
recorded fallbacks, embeddings, and a run that resumes after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tailormind.config import load_config
from tailormind.data.importers import import_table
from tailormind.data.ingest import save_import
from tailormind.data.item_text import item_text
from tailormind.data.split import split_workspace
from tailormind.data.workspace import Workspace
from tailormind.models.media import encode_h264
from tailormind.models.registry import load_role
from tailormind.models.roles import TextModel
from tailormind.profiling.items import ItemDescriber, describe_items
from tests.fakes import ScriptedText, down
from tests.tiny_models import tiny_llama, tiny_vlm

LONG_TEXT = ("A long review of a mountain trail, its history, the villages along it, the food, "
             "the weather in each season and the gear to bring. ") * 8


@pytest.fixture
def media_ws(tmp_path: Path) -> Workspace:
    export = tmp_path / "export"
    (export / "media").mkdir(parents=True)
    Image.new("RGB", (48, 40), "orange").save(export / "media" / "good.png")
    (export / "media" / "broken.png").write_bytes(b"\x89PNG broken")
    frames = [Image.new("RGB", (64, 64), (i * 3 % 255, 90, 30)) for i in range(4 * 20)]
    encode_h264(frames, export / "media" / "clip.mp4", fps=4, width=64, height=64)
    items = [
        {"item_id": "short", "title": "Quiet trails", "text": "Five easy hikes near the city.",
         "tags": ["hiking", "weekend"]},
        {"item_id": "long", "title": "The long trail", "text": LONG_TEXT, "tags": ["hiking"]},
        {"item_id": "empty", "title": "", "text": "", "tags": []},
        {"item_id": "pics", "title": "Autumn colours", "text": "Photos.", "tags": [],
         "image_paths": ["media/good.png"]},
        {"item_id": "badpic", "title": "Broken photo", "text": "", "tags": [],
         "image_paths": ["media/broken.png"]},
        {"item_id": "clip", "title": "Ridge walk", "text": "A video.", "tags": ["video"],
         "video_paths": ["media/clip.mp4"]},
    ]
    (export / "items.jsonl").write_text("\n".join(json.dumps(i) for i in items) + "\n")
    rows = ["user_id,item_id,timestamp"]
    for u in range(3):
        rows += [f"u{u},{item['item_id']},{1_700_000_000 + 100 * u + k}"
                 for k, item in enumerate(items)]
    (export / "interactions.csv").write_text("\n".join(rows) + "\n")
    bundle = import_table(export / "interactions.csv", items=str(export / "items.jsonl"))
    return save_import(bundle, tmp_path / "ws")


def recording(inner: TextModel | None = None, *, fail: bool = False,
              reply: str | None = None) -> ScriptedText:
    """Wraps a text role: item summaries and video merges answered by it (or ``fail``ing, or
    answered ``reply``), every call and answer recorded (``batches``) so a test can check what
    was asked and what came back."""
    if fail:
        answer = down()
    elif inner is None:
        answer = reply or ""
    else:
        def answer(call):
            return inner.complete([call.conversation], call.params)[0].text
    return ScriptedText({"item_text": answer, "video_merge": answer},
                        backend=inner.backend if inner else "recording",
                        model_id=inner.model_id if inner else "recording", follows_json=False)


def _row(item_id: str, text: str) -> dict:
    return {"item_id": item_id, "title": "", "text": text, "tags": [], "image_paths": [],
            "video_paths": [], "platform": None}


@pytest.fixture(scope="module")
def tiny_roles(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tiny-roles")
    settings = load_config(environ={}, overrides={"models": {
        "cache_dir": str(root / "cache"),
        "text": {"backend": "transformers", "path": str(tiny_llama(root / "llm"))},
        "describe": {"backend": "transformers", "path": str(tiny_vlm(root / "vlm"))}}})
    return settings, load_role("text", settings), load_role("describe", settings)


def test_item_text_does_not_repeat_itself() -> None:
    assert item_text({"title": "Toy Story (1995)", "text": "Toy Story (1995). Genres: comedy.",
                      "tags": ["comedy", "pixar"]}) == "Toy Story (1995). Genres: comedy. Tags: pixar."
    assert item_text({"title": "", "text": None, "tags": []}) == ""


def test_every_modality_and_fallback(media_ws: Workspace, tiny_roles, embedded_settings) -> None:
    settings, tiny_text, describe = tiny_roles
    text = recording(tiny_text)  # the tiny LM's greedy answers, recorded
    describer = ItemDescriber(settings, media_ws, text=text, describe=describe,
                              embed=load_role("embed", embedded_settings))
    report = describe_items(media_ws, settings, describer=describer)
    assert report.complete and report.described == 6
    rows = {r["item_id"]: r for r in media_ws.read("item_features").to_pylist()}
    assert rows["short"]["text_source"] == "passthrough"
    assert rows["short"]["description"] == "Quiet trails. Five easy hikes near the city. Tags: hiking, weekend."
    # the one long item (1077 characters) was summarised by the text model, in its own call
    # (the second call merges the video's halves); the summary is the model's answer, stripped
    assert len(text.batches) == 2 and len(text.batches[0]) == 1
    assert [[c.kind for c in b] for b in text.batches] == [["item_text"], ["video_merge"]]
    asked = text.batches[0][0]
    assert LONG_TEXT.strip() in asked.prompt and "The long trail" in asked.prompt
    assert "Tags:" not in asked.prompt  # tags are never given to a model to rewrite
    summary = asked.answer.strip()
    assert summary  # greedy decoding of the seeded tiny LM: a fixed, non-empty answer
    assert rows["long"]["text_source"] == f"text:{tiny_text.model_id}"
    # the summary, then the item's own tags as they are
    described = item_text({"text": summary, "tags": ["hiking"]})
    assert described.endswith(" Tags: hiking.")
    assert rows["long"]["text_description"] == rows["long"]["description"] == described
    assert rows["long"]["fallback"] is None
    assert report.counts["text_summarised"] == 1 and report.counts["text_passthrough"] == 4
    assert rows["pics"]["image_source"] == f"describe:{describe.model_id}"
    assert rows["pics"]["description"].startswith("Autumn colours. Photos.")
    assert rows["badpic"]["image_source"] == "failed"
    assert "broken.png: cannot decode image" in rows["badpic"]["fallback"]
    assert rows["clip"]["video_source"] == f"describe:{describe.model_id}"
    assert rows["clip"]["video_description"]  # head and tail merged (or both kept)
    assert rows["empty"]["description"] == "" and "empty description" in rows["empty"]["fallback"]
    vectors = {k: np.asarray(r["embedding"]) for k, r in rows.items()}
    assert np.allclose(vectors["empty"], 0.0)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-4 for k, v in vectors.items() if k != "empty")
    assert report.counts["image_fallback"] == 1 and report.counts["empty"] == 1
    assert report.models["describe"] == describe.model_id


def test_a_failed_or_empty_summary_truncates_to_short_text_chars(media_ws: Workspace,
                                                                 embedded_settings) -> None:
    """The text model down, or answering nothing: the long item's own text, cut at 600."""
    embed = load_role("embed", embedded_settings)
    assert embedded_settings.profiling.short_text_chars == 600
    row = {"item_id": "long", "title": "The long trail", "text": LONG_TEXT, "tags": ["hiking"],
           "image_paths": [], "video_paths": [], "platform": None}
    # free text: "The long trail. " (16) + the review (1047) = 1063; its first 600 characters,
    # then the tags (a quarter of 600 at least is left for them)
    expected = "The long trail. " + LONG_TEXT[:584] + " Tags: hiking."
    for model, reason in ((recording(fail=True), "text model failed (models.text: server "
                                                 "timed out); text truncated"),
                          (recording(reply="  \n"), "text model returned an empty summary; "
                                                     "text truncated")):
        describer = ItemDescriber(embedded_settings, media_ws, text=model, embed=embed,
                                  describe_reason="not configured")
        found = describer.describe_rows([row]).to_pylist()[0]
        assert len(model.batches) == 1
        assert found["text_source"] == "passthrough (truncated)"
        assert found["text_description"] == found["description"] == expected
        assert found["fallback"] == reason


def test_600_characters_pass_through_601_are_summarised(media_ws: Workspace,
                                                        embedded_settings) -> None:
    """``profiling.short_text_chars`` (600) is the last length that passes through unchanged."""
    assert embedded_settings.profiling.short_text_chars == 600
    model = recording(reply=" A summary. ")
    describer = ItemDescriber(embedded_settings, media_ws, text=model,
                              embed=load_role("embed", embedded_settings),
                              describe_reason="not configured")
    at, over = "b" * 599 + ".", "c" * 600 + "."
    found = {r["item_id"]: r for r in describer.describe_rows(
        [_row("at", at), _row("over", over)]).to_pylist()}
    assert found["at"]["text_source"] == "passthrough" and found["at"]["description"] == at
    assert found["over"]["text_source"] == "text:recording"
    assert found["over"]["description"] == "A summary."
    assert len(model.batches) == 1 and len(model.batches[0]) == 1 and over in model.batches[0][0].prompt


def test_without_a_describe_model_media_fall_back(media_ws: Workspace, tiny_roles,
                                                  embedded_settings) -> None:
    settings, text, _ = tiny_roles
    describer = ItemDescriber(embedded_settings, media_ws, text=text)
    assert describer.describe is None and describer.describe_reason == "not configured"
    report = describe_items(media_ws, embedded_settings, describer=describer)
    rows = {r["item_id"]: r for r in media_ws.read("item_features").to_pylist()}
    assert rows["pics"]["image_source"] == "not configured"
    assert "1 image(s) not described: describe model not configured" in rows["pics"]["fallback"]
    assert rows["clip"]["video_source"] == "not configured"
    assert rows["pics"]["description"] == "Autumn colours. Photos."  # text still carries it
    assert report.counts["video_fallback"] == 1 and report.counts["image_fallback"] == 2


class CrashingDescriber(ItemDescriber):
    """Dies after ``batches`` batches, like a worker killed mid-job."""

    def __init__(self, *args, batches: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches_left = batches

    def describe_rows(self, rows):
        if self.batches_left == 0:
            raise KeyboardInterrupt("killed")
        self.batches_left -= 1
        return super().describe_rows(rows)


def test_a_crashed_run_resumes_without_redoing_work(media_ws: Workspace, tiny_roles,
                                                    tmp_path: Path) -> None:
    base, text, _ = tiny_roles
    settings = load_config(environ={}, overrides={
        "profiling": {"describe_batch_size": 2},
        "models": {"cache": False, "describe": {"backend": "none"}}})
    crashing = CrashingDescriber(settings, media_ws, text=text, batches=2)
    with pytest.raises(KeyboardInterrupt):
        describe_items(media_ws, settings, describer=crashing)
    assert not media_ws.has("item_features")
    again = ItemDescriber(settings, media_ws, text=text)
    embedded_before = again.embed.stats["calls"]  # the role is shared within the process
    report = describe_items(media_ws, settings, describer=again)
    assert report.skipped_done == 4 and report.described == 2 and report.complete
    assert again.embed.stats["calls"] - embedded_before == 2  # only the two items left
    ids = media_ws.read("item_features", columns=["item_id"]).column("item_id").to_pylist()
    assert sorted(ids) == sorted(["short", "long", "empty", "pics", "badpic", "clip"])
    assert not (media_ws.root / "parts" / "item_features").exists()
    # finished: a third run does nothing; a new split keeps the item features
    assert describe_items(media_ws, settings, describer=again).described == 0
    split_workspace(media_ws, seed=1, negatives=2)
    assert Workspace.open(media_ws.root).has("item_features")


def test_cli_describe_with_limit_then_finish(cli, media_ws: Workspace, monkeypatch,
                                            models_cache: Path) -> None:
    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(models_cache))
    monkeypatch.setenv("TAILORMIND_PROFILING__SHORT_TEXT_CHARS", "5000")  # no text model needed
    first = cli("profile", "describe", "--workspace", media_ws.root, "--limit", "4", "--json")
    assert first.code == 0, first.err
    assert json.loads(first.out)["complete"] is False
    second = cli("profile", "describe", "--workspace", media_ws.root, "--json")
    report = json.loads(second.out)
    assert report["complete"] is True and report["described"] == 2 and report["skipped_done"] == 4
    # the second run described badpic and clip: one image and one video fell back
    assert report["counts"]["image_fallback"] == 1 and report["counts"]["video_fallback"] == 1


@pytest.fixture(scope="module")
def ray_local():
    import os

    import ray

    os.environ["RAY_AUTH_MODE"] = "disabled"  # a throw-away local cluster for this test only
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def test_ray_data_job_describes_and_resumes(media_ws: Workspace, ray_local, monkeypatch,
                                            capsys, models_cache: Path) -> None:
    """jobs/describe_items.py on 2 Ray Data actors: the same table as in-process, resumable."""
    import importlib.util

    monkeypatch.setenv("TAILORMIND_MODELS__CACHE_DIR", str(models_cache))
    monkeypatch.setenv("TAILORMIND_PROFILING__SHORT_TEXT_CHARS", "5000")
    monkeypatch.setenv("TAILORMIND_PROFILING__DESCRIBE_BATCH_SIZE", "2")
    spec = importlib.util.spec_from_file_location(
        "describe_items_job", Path(__file__).parents[1] / "jobs" / "describe_items.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.main(["--workspace", str(media_ws.root), "--workers", "2", "--limit", "3",
                     "--cpus-per-worker", "0.5"]) == 0
    first = _last_json(capsys)
    assert first["described"] == 3 and not first["complete"]
    assert job.main(["--workspace", str(media_ws.root), "--workers", "2",
                     "--cpus-per-worker", "0.5"]) == 0
    second = _last_json(capsys)
    assert second["described"] == 3 and second["skipped_done"] == 3 and second["complete"]
    features = Workspace.open(media_ws.root).read("item_features")  # the job wrote the manifest
    rows = {r["item_id"]: r for r in features.to_pylist()}
    assert len(rows) == 6 and rows["pics"]["image_source"] == "not configured"
    assert job.main(["--workspace", str(media_ws.root / "nope")]) == 2


def _last_json(capsys) -> dict:
    text = capsys.readouterr().out
    return json.loads(text[text.index("{\n"):])


class NoTextModel(TextModel):
    """A text role that fails the test if asked anything."""

    def __init__(self) -> None:
        super().__init__(backend="none", model_id="none")

    def _generate(self, batch, params, json_schema):
        raise AssertionError(f"a text model was asked {len(batch)} question(s)")


def test_a_tag_list_is_cut_to_its_most_informative_tags_without_a_model(
        media_ws: Workspace, embedded_settings) -> None:
    """A title and 500 tags (a tag-heavy music catalogue): no model call; the description keeps
    the shared tags of highest IDF that fit 600 characters, in the item's order; a tag no other
    item carries comes last; tags the text mentions are not repeated."""
    from tailormind.data.tag_idf import TagIdf

    tags = [f"tag{i:03d}" for i in range(500)]
    # df: tag000..tag009 on every other item (common), tag010..tag499 on one other item each,
    # 'solo' only on this item
    others = [tags[:10]] * 50 + [[t] for t in tags[10:]]
    idf = TagIdf.from_tag_lists([[*tags, "solo"], *others])
    describer = ItemDescriber(embedded_settings, media_ws, text=NoTextModel(), tag_idf=idf,
                              embed=load_role("embed", embedded_settings),
                              describe_reason="not configured")
    row = {**_row("song", ""), "title": "Song of tag499", "tags": ["solo", *tags]}
    [found] = describer.describe_rows([row]).to_pylist()
    description = found["description"]
    assert found["text_source"] == "passthrough" and len(description) <= 600
    kept = description.split("Tags: ", 1)[1].rstrip(".").split(", ")
    # "Song of tag499. " is 16 characters: 583 left for "Tags: ... ." -> 72 tags of 6 + 2
    assert kept == tags[10:82] and "solo" not in kept and "tag499" not in kept
    assert description.startswith("Song of tag499. Tags: tag010, tag011")


def test_parts_hold_a_bounded_number_of_model_items(embedded_settings) -> None:
    from tailormind.profiling.items import describe_parts

    config = embedded_settings.profiling.model_copy(update={
        "describe_batch_size": 5, "describe_model_items_per_part": 2})
    def parts_of(ids: str) -> list[list[str]]:
        """``ids`` like "l0 s1": l = long free text (needs a model), s = short."""
        rows = [_row(i, "x" * 700 if i[0] == "l" else "short") for i in ids.split()]
        parts = [[r["item_id"] for r in part] for part in describe_parts(rows, config)]
        assert [i for part in parts for i in part] == ids.split()
        return parts

    assert parts_of("l0 s1 s2 l3 s4 s5 l6 s7 s8 l9 s10 s11") == [
        ["l0", "s1", "s2", "l3", "s4"], ["s5", "l6", "s7", "s8", "l9"], ["s10", "s11"]]
    assert parts_of("l0 l1 l2 s3 s4 l5 l6 l7") == [["l0", "l1"], ["l2", "s3", "s4", "l5"],
                                                   ["l6", "l7"]]
