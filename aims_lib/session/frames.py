"""Reading a session's INPUT: a folder of photos or a video, checked before any model loads.

:func:`open_input` checks INPUT (a folder with at least one photo, or a video whose first frame
decodes) and :func:`iter_frames` yields its frames in order as :class:`InputFrame`: each photo
(sorted by name, read by :func:`aims_lib.image_io.read_image`, EXIF orientation included) or the
video's frames decoded with PyAV, sampled at ``fps`` frames per second by their timestamps
(:func:`sample_at_rate`) and turned upright by the display rotation. A photo that cannot be read,
or a video that stops decoding part-way, gives a frame carrying its error instead of pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import numpy as np

from aims_lib.image_io import ImageReadError, read_image
from aims_lib.predict import IMAGE_SUFFIXES

T = TypeVar("T")

VIDEO_SUFFIXES: Final[tuple[str, ...]] = (".mp4", ".mov", ".avi", ".mkv", ".webm")
#: Timestamps within this many seconds of the next sampling time count as on it.
TIME_TOL: Final[float] = 1e-6


class SessionInputError(ValueError):
    """An INPUT that holds no session: missing, a folder without photos, no video (names the path)."""


@dataclass(frozen=True)
class SessionInput:
    """A checked INPUT: a folder's photos (sorted by name) or a video file."""

    path: Path
    kind: Literal["photos", "video"]
    photos: tuple[Path, ...] = ()


@dataclass(frozen=True)
class InputFrame:
    """One photo or sampled video frame: its pixels (uint8 RGB, upright) or why they could not be read."""

    source: str  # the photo's file name, or the video's
    time_s: float | None  # seconds after the video's first frame; None for photos
    image: np.ndarray | None
    error: str = ""


def _first_video_frame(path: Path) -> None:
    """Decode up to the first frame of ``path``; :class:`SessionInputError` when there is none."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SessionInputError(f"{path}: holds no video stream")
            for _ in container.decode(container.streams.video[0]):
                return
    except av.error.FFmpegError as exc:
        raise SessionInputError(f"{path}: not a readable video ({exc})") from None
    raise SessionInputError(f"{path}: the video has no frames")


def open_input(path: str | os.PathLike[str]) -> SessionInput:
    """Check INPUT before any model loads: a folder with at least one photo, or a video file
    whose first frame decodes; :class:`SessionInputError` names the path otherwise."""
    path = Path(path)
    if path.is_dir():
        photos = tuple(sorted((f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                              key=lambda f: f.name))
        if not photos:
            raise SessionInputError(f"{path}: the folder holds no photos ({' '.join(IMAGE_SUFFIXES)})")
        return SessionInput(path, "photos", photos)
    if not path.exists():
        raise SessionInputError(f"{path}: no such file or folder")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise SessionInputError(f"{path}: neither a folder of photos nor a video ({' '.join(VIDEO_SUFFIXES)})")
    _first_video_frame(path)
    return SessionInput(path, "video")


def sample_at_rate(items: Iterable[tuple[float, T]], fps: float) -> Iterator[tuple[float, T]]:
    """The ``(time, item)`` pairs to keep, in decoding order, to sample ``fps`` frames per second:
    the first, then the first at or after each further multiple of ``1 / fps`` after it (so a
    variable frame rate or dropped frames keep the times right)."""
    step = 1.0 / fps
    due: float | None = None
    for t, item in items:
        if due is None:
            due = t
        if t >= due - TIME_TOL:
            yield t, item
            due += step * (math.floor((t - due + TIME_TOL) / step) + 1)


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """A decoded frame turned by its display matrix's counter-clockwise ``rotation`` (degrees)."""
    return np.ascontiguousarray(np.rot90(image, k=round(rotation / 90) % 4)) if rotation else image


def _video_frames(path: Path, fps: float) -> Iterator[InputFrame]:
    """The video's frames sampled at ``fps`` (:func:`sample_at_rate`), upright, timed from its
    first frame; a decoding error part-way ends the video with an :class:`InputFrame` carrying it."""
    import av

    failure: list[str] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)

        def decoded() -> Iterator[tuple[float, Any]]:
            start, index, frames = None, 0, container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except av.error.FFmpegError as exc:
                    failure.append(str(exc))
                    return
                t = frame.time if frame.time is not None else index / rate
                start = t if start is None else start
                index += 1
                yield t - start, frame

        last = 0.0
        for last, frame in sample_at_rate(decoded(), fps):
            yield InputFrame(path.name, round(last, 6), _upright(frame.to_ndarray(format="rgb24"), frame.rotation))
    if failure:
        yield InputFrame(path.name, None, None, f"{path}: decoding stopped after {last:.2f} s ({failure[0]})")


def expected_frames(session: SessionInput, fps: float) -> int | None:
    """How many frames the session will give (photos), or about how many (a video of known
    duration); None when a video does not say its duration. For the progress bar."""
    if session.kind == "photos":
        return len(session.photos)
    import av

    with av.open(str(session.path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            return None
    return max(1, math.ceil(seconds * fps - TIME_TOL))


def iter_frames(session: SessionInput, fps: float) -> Iterator[InputFrame]:
    """Every frame of the session in order: each photo (read as :func:`read_image` reads it,
    EXIF orientation included; an unreadable one carries its error) or the sampled video frames."""
    if session.kind == "video":
        yield from _video_frames(session.path, fps)
        return
    for photo in session.photos:
        try:
            yield InputFrame(photo.name, None, read_image(photo))
        except ImageReadError as exc:
            yield InputFrame(photo.name, None, None, str(exc))
