"""post.json is a typed, versioned record: what is written reads back the same, a file from
before ``schema_version`` loads, and anything else is a clear "re-generate" error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tailormind.errors import CorruptFileError
from tailormind.generation.bundle import (
    POST_JSON,
    bundle_dir,
    bundle_problems,
    read_post,
    write_bundle,
)
from tailormind.generation.bundle_scan import read_bundles
from tailormind.generation.catalog import packaged_catalog
from tailormind.generation.post_record import (
    POST_SCHEMA_VERSION,
    PostRecordError,
    parse_post_record,
    reader_text,
)
from tests.post_records import post_record


def written(tmp_path: Path, **fields: object) -> Path:
    target = bundle_dir(tmp_path, "u1", "post-1")
    write_bundle(target, post_record("u1", "post-1", **fields),
                 packaged_catalog().platform("rednote"),
                 [("cover.png", Image.new("RGB", (32, 32), (9, 9, 9)))])
    return target


def rewrite(target: Path, change) -> None:
    data = json.loads((target / POST_JSON).read_text(encoding="utf-8"))
    change(data)
    (target / POST_JSON).write_text(json.dumps(data), encoding="utf-8")


def test_a_record_round_trips_with_its_schema_version(tmp_path: Path) -> None:
    target = written(tmp_path)
    on_disk = json.loads((target / POST_JSON).read_text(encoding="utf-8"))
    assert on_disk["schema_version"] == POST_SCHEMA_VERSION == 3
    record = read_post(target)
    assert record == post_record("u1", "post-1") and record.to_json() == on_disk
    assert record.media_files == ["cover.png"] and record.llm_tokens == 0
    assert bundle_problems(target) == []


def test_a_bundle_from_before_schema_version_still_loads(tmp_path: Path) -> None:
    target = written(tmp_path)
    rewrite(target, lambda data: data.pop("schema_version"))
    record = read_post(target)
    assert record is not None and record.schema_version == POST_SCHEMA_VERSION
    assert [p.record.post_id for p in read_bundles(tmp_path)] == ["post-1"]


def test_a_version_2_record_loads_with_its_model_seconds_not_recorded(tmp_path: Path) -> None:
    target = written(tmp_path, seconds_by_stage={"writing": 2.0}, tokens_by_stage={"writing": 9},
                     model_seconds_by_stage={"writing": 1.5}, gpu_seconds_by_stage=None)
    assert read_post(target).model_seconds_by_stage == {"writing": 1.5}

    def as_version_2(data: dict) -> None:
        data.update(schema_version=2)
        del data["model_seconds_by_stage"], data["gpu_seconds_by_stage"]

    rewrite(target, as_version_2)
    record = read_post(target)
    assert record.model_seconds_by_stage is None and record.gpu_seconds_by_stage is None
    assert record.seconds_by_stage == {"writing": 2.0} and record.llm_tokens == 9


@pytest.mark.parametrize(("change", "says"), [
    (lambda d: d.pop("reflection"), "reflection: Field required"),
    (lambda d: d.update(kind="podcast"), "kind: Input should be 'post' or 'video'"),
    (lambda d: d.update(platform="myspace"), "platform: Input should be"),
    (lambda d: d.update(surprise=1), "surprise: Extra inputs are not permitted"),
    (lambda d: d["reflection"].update(rounds=[]), "reflection.rounds: List should have at least 1"),
])
def test_a_record_that_does_not_fit_is_a_clear_regenerate_error(tmp_path: Path, change,
                                                                 says: str) -> None:
    target = written(tmp_path)
    rewrite(target, change)
    with pytest.raises(PostRecordError) as caught:
        read_post(target)
    message = str(caught.value)
    assert str(target / POST_JSON) in message and says in message
    assert "re-generate it with `tailormind generate --force`" in message
    assert isinstance(caught.value, CorruptFileError)  # the API answers 503 corrupt_post
    assert bundle_problems(target) and says in bundle_problems(target)[0]
    unreadable: list[str] = []
    assert read_bundles(tmp_path, unreadable) == [] and unreadable == [
        str((target / POST_JSON).relative_to(tmp_path))]


def test_a_record_from_a_newer_version_says_to_upgrade(tmp_path: Path) -> None:
    target = written(tmp_path)
    rewrite(target, lambda data: data.update(schema_version=POST_SCHEMA_VERSION + 1))
    with pytest.raises(PostRecordError, match="newer than this TailorMind reads.*upgrade"):
        read_post(target)
    with pytest.raises(PostRecordError, match="a JSON object is expected"):
        parse_post_record(["not", "a", "post"], "x.json")


def test_reader_text_is_what_a_reader_sees_in_order() -> None:
    assert reader_text("Title", "Body", ["cap 1", "", "cap 2"], ["#a", "b", "#"]) == \
        "Title\nBody\ncap 1\ncap 2\n#a #b"
    assert reader_text("", "", [], []) == ""
    record = post_record("u", "p", hashtags=["x"], storyboard=[
        {"prompt": "p", "duration_s": 2.0, "caption": "shot caption"}])
    assert record.reader_text() == (f"{record.title}\n{record.body}\ncover\nshot caption\n#x")
