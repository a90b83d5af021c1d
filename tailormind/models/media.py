"""Video I/O with PyAV: H.264 encoding of frame sequences and frame sampling for ``describe``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from tailormind.errors import ModelInputError

H264_CODEC = "libx264"


def encode_h264(frames: Iterable[Image.Image | np.ndarray], path: Path, *, fps: int,
                width: int, height: int, crf: int = 23) -> int:
    """Write RGB frames to an H.264 (yuv420p) mp4 at ``path``; returns the number of frames."""
    import av

    count = 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(H264_CODEC, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            if isinstance(frame, Image.Image) and frame.mode != "RGB":
                frame = frame.convert("RGB")
            array = np.asarray(frame, dtype=np.uint8)
            if array.shape[:2] != (height, width):
                raise ModelInputError(f"frame {count}: size {array.shape[1]}x{array.shape[0]}, "
                                      f"expected {width}x{height}")
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


@dataclass
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float


def probe_video(path: str | Path) -> VideoInfo:
    """Codec, size, frame rate, frame count and duration, by decoding the file."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            return VideoInfo(codec=stream.codec_context.name, width=stream.width,
                             height=stream.height, fps=fps, frames=frames,
                             duration_s=frames / fps if fps else 0.0)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ModelInputError(f"{path}: cannot decode video ({exc})") from exc


@dataclass
class VideoWindows:
    head: list[Image.Image]
    tail: list[Image.Image]
    duration_s: float


def sample_video_windows(path: str | Path, window_s: float, frames_per_window: int) -> VideoWindows:
    """Evenly spaced frames from ``[0, window_s)`` and ``[duration - window_s, duration)``.

    Only the two windows are decoded (the tail after a seek), so a long video costs about as much
    as a short one. A video no longer than ``2 × window_s`` is one window over its whole length
    (``tail`` empty), so no frame is described twice.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise ModelInputError(f"{path}: video file does not exist")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            duration = _duration_s(container, stream)
            if duration <= 2 * window_s:
                head = _frames_at(container, stream, np.linspace(0, duration, frames_per_window,
                                                                 endpoint=False))
                return VideoWindows(head=head, tail=[], duration_s=duration)
            head = _frames_at(container, stream,
                              np.linspace(0, window_s, frames_per_window, endpoint=False))
            tail_start = duration - window_s
            container.seek(int(tail_start / stream.time_base), stream=stream, backward=True)
            tail = _frames_at(container, stream, np.linspace(tail_start, duration,
                                                            frames_per_window, endpoint=False))
            return VideoWindows(head=head, tail=tail, duration_s=duration)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ModelInputError(f"{path}: cannot decode video ({exc})") from exc


def _duration_s(container: object, stream: object) -> float:
    if stream.duration is not None and stream.time_base is not None:  # type: ignore[attr-defined]
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    if container.duration is not None:  # type: ignore[attr-defined]
        return float(container.duration) / 1_000_000  # type: ignore[attr-defined]
    raise ModelInputError("the video has no duration")


def _frames_at(container: object, stream: object, targets: np.ndarray) -> list[Image.Image]:
    """Decode forward, keeping the first frame at or after each target time (s)."""
    out: list[Image.Image] = []
    pending = list(targets)
    last = None
    for frame in container.decode(stream):  # type: ignore[attr-defined]
        last = frame
        time_s = float(frame.time or 0.0)
        if pending and time_s + 1e-6 >= pending[0]:
            out.append(frame.to_image())
            while pending and time_s + 1e-6 >= pending[0]:
                pending.pop(0)
        if not pending:
            break
    if not out and last is not None:
        out.append(last.to_image())
    if not out:
        raise ModelInputError("the video has no frames")
    return out
