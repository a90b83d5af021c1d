"""The ``video`` role (slideshow, tiny diffusers text-to-video) and frame sampling for ``describe``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tailormind.config import load_config
from tailormind.errors import ModelInputError
from tailormind.models.media import encode_h264, probe_video, sample_video_windows
from tailormind.models.registry import load_role
from tailormind.models.types import Shot, Storyboard
from tests.tiny_models import tiny_text_to_video

STORYBOARD = Storyboard(
    shots=(Shot("Opening: the trail at dawn", 1.5, "清晨出发"),
           Shot("The view from the ridge", 1.0, "The view from the ridge"),
           Shot("Pack list", 0.5, "")),
    width=160, height=288, fps=12, seed=1, title="Three trails", palette_hint="hiking",
)


@pytest.fixture
def slideshow(tmp_path: Path):
    return load_role("video", load_config(environ={}, overrides={
        "models": {"cache_dir": str(tmp_path / "cache")}}))


def test_slideshow_is_h264_with_the_storyboard_timing(slideshow, tmp_path: Path) -> None:
    video = slideshow.render(STORYBOARD, tmp_path / "out" / "post.mp4")
    info = probe_video(video.path)
    assert info.codec == "h264" and (info.width, info.height) == (160, 288)
    assert info.frames == video.frames == round(3.0 * 12)
    assert info.duration_s == pytest.approx(STORYBOARD.duration_s, abs=1 / 12)
    assert video.kind == "slideshow" and video.shot_kinds == ["card", "card", "card"]
    assert not list((tmp_path / "out").glob(".*partial*"))


def test_slideshow_cache_restores_the_file(slideshow, tmp_path: Path) -> None:
    first = slideshow.render(STORYBOARD, tmp_path / "a.mp4")
    second = slideshow.render(STORYBOARD, tmp_path / "b.mp4")
    assert second.cached and not first.cached
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert second.frames == first.frames and second.shot_kinds == first.shot_kinds


def test_shots_differ_and_captions_are_burnt_in(slideshow, tmp_path: Path) -> None:
    video = slideshow.render(STORYBOARD, tmp_path / "v.mp4")
    windows = sample_video_windows(video.path, window_s=8, frames_per_window=6)
    assert windows.tail == []  # 3 s: one window
    frames = [np.asarray(f, dtype=np.int16) for f in windows.head]
    assert np.abs(frames[0] - frames[-1]).mean() > 3  # first and last shot are different stills
    bottom = frames[0][-80:]
    assert bottom.std() > 10  # the caption bar has text


@pytest.mark.parametrize(
    ("storyboard", "message"),
    [
        (Storyboard(shots=()), "at least one shot"),
        (Storyboard(shots=(Shot("x", 0.0),)), "duration must be > 0"),
        (Storyboard(shots=(Shot("x", 1.0),), width=161), "even frame sizes"),
    ],
)
def test_bad_storyboards(slideshow, tmp_path: Path, storyboard: Storyboard, message: str) -> None:
    with pytest.raises(ModelInputError, match=message):
        slideshow.render(storyboard, tmp_path / "bad.mp4")


def _clock_video(path: Path, seconds: int, fps: int = 4) -> Path:
    """Solid frames whose red channel is 10 × the second they belong to."""
    frames = [Image.new("RGB", (64, 64), (10 * (i // fps), 128, 0)) for i in range(seconds * fps)]
    encode_h264(frames, path, fps=fps, width=64, height=64, crf=0)
    return path


def test_describe_windows_are_the_first_and_last_8_seconds(tmp_path: Path) -> None:
    windows = sample_video_windows(_clock_video(tmp_path / "clock.mp4", 20), 8.0, 4)
    assert windows.duration_s == pytest.approx(20.0, abs=0.3)
    head = [np.asarray(f)[..., 0].mean() / 10 for f in windows.head]
    tail = [np.asarray(f)[..., 0].mean() / 10 for f in windows.tail]
    assert len(head) == len(tail) == 4
    assert head == pytest.approx([0, 2, 4, 6], abs=0.5)
    assert tail == pytest.approx([12, 14, 16, 18], abs=0.5)


def test_undecodable_video(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ModelInputError, match="bad.mp4: cannot decode video"):
        sample_video_windows(bad, 8.0, 4)
    with pytest.raises(ModelInputError, match="does not exist"):
        sample_video_windows(tmp_path / "none.mp4", 8.0, 4)


def test_diffusers_text_to_video(tmp_path: Path) -> None:
    path = tiny_text_to_video(tmp_path / "t2v")
    video_role = load_role("video", load_config(environ={}, overrides={"models": {
        "cache": False, "video": {"backend": "diffusers", "path": str(path), "device": "cpu",
                                  "options": {"num_inference_steps": 2, "frames_per_shot": 4}}}}))
    storyboard = Storyboard(shots=(Shot("a dog", 1.0, "a caption"), Shot("a cat", 0.5)),
                            width=64, height=48, fps=8, seed=0)
    video = video_role.render(storyboard, tmp_path / "t2v.mp4")
    info = probe_video(video.path)
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 64, 48, 12)
    assert video.kind == "generated"
    again = video_role.render(storyboard, tmp_path / "t2v-again.mp4")
    a = sample_video_windows(video.path, 8, 3).head
    b = sample_video_windows(again.path, 8, 3).head
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
