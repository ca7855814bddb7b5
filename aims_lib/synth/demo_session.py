"""A demo session: one rendered infant going through a sequence of AIMS poses, as photos and a video.

People who screen an infant hold a folder of photos or a short video of ONE infant, not a
dataset of many; :mod:`aims_lib.session` reports on such a session. This module renders one
whose true poses are known, so that the report can be tried and checked end to end without
real infant footage (which is licence-bound).

How it is made, reusing the generator's parts (:mod:`aims_lib.synth.generator`):

* one body (one shape draw of the domain's body model, one clothing thickness), one appearance
  (skin, clothes, room, light, camera pipeline) and one camera style (field of view, elevation,
  distance and a viewing side drawn once) for the whole session;
* the sequence is cut into segments, one pose class each (by default supine -> prone -> the
  sitting variants -> standing); each segment is ONE pose drawn by the class sampler
  (:func:`aims_lib.synth.poses.sample_poses`, with its props such as the bolster), held for its
  frames while the camera sways a little (a hand-held phone): small variation between frames,
  and the true label of every frame is the segment's class;
* the camera is placed relative to the body's heading (the sampler turns each pose to a random
  yaw), so the infant is seen from the same side throughout: lying poses from the side,
  sitting and standing ones from the front-ish.

Outputs in ``out_dir``: ``frames/frame_NNN.png`` (lossless), ``session.mp4`` (one video frame
per photo at ``fps``) and ``labels.csv`` (frame, file, time_s, coarse, fine). Command line::

    python -m aims_lib.synth.demo_session OUT_DIR [--seed 0] [--frames 24] [--fps 2] [--image-size 256] [--domain real]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np

from aims_lib import taxonomy

#: Supine -> prone -> sitting variants -> standing, the order in which infants acquire them.
DEFAULT_SEQUENCE: Final[tuple[str, ...]] = (
    "Supine Lying", "Hands to Knee/Feet", "Prone Lying", "Forearm Support",
    "Sitting w/ Support", "Sitting w/ Arm Support", "Sitting w/o Support", "Standing",
)
FRAMES_DIR: Final[str] = "frames"
VIDEO_FILE: Final[str] = "session.mp4"
LABELS_FILE: Final[str] = "labels.csv"
#: The settings of the session in the folder; ``complete`` once every output is written.
SETTINGS_FILE: Final[str] = "demo_session.json"
LABEL_COLUMNS: Final[tuple[str, ...]] = ("frame", "file", "time_s", "coarse", "fine")
#: Encoders tried in order (H.264 where FFmpeg was built with x264, else MPEG-4 part 2).
from aims_lib.files import atomic_write_bytes, write_json

VIDEO_CODECS: Final[tuple[str, ...]] = ("libx264", "mpeg4")
#: The hand-held sway between frames: azimuth, elevation and roll (degrees), fill (share).
SWAY_DEG: Final[tuple[float, float, float]] = (6.0, 3.0, 3.0)
SWAY_FILL: Final[float] = 0.03
#: The session's camera: drawn once from these ranges (a parent filming from above and aside).
FOV_DEG: Final[tuple[float, float]] = (40.0, 60.0)
ELEVATION_DEG: Final[tuple[float, float]] = (30.0, 55.0)
FILL: Final[tuple[float, float]] = (0.65, 0.85)
SIDE_DEG: Final[tuple[float, float]] = (-35.0, 35.0)  # around the front (upright) or the side (lying)


@dataclass(frozen=True)
class DemoSession:
    """What :func:`render_demo_session` wrote: the photo folder, the video and the true labels (CSV)."""

    folder: Path
    video: Path
    labels: Path


def segments(sequence: Sequence[str], frames: int) -> list[tuple[str, int]]:
    """The pose class of each segment and its number of frames. Every class of ``sequence`` gets
    a segment when there are enough frames (the frames split as evenly as possible, earlier
    segments one longer); with fewer frames than classes, classes spread over the sequence get
    one frame each, so a short session still runs from its first class to its last."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    classes = [taxonomy.parse_fine(c) for c in sequence]
    if not classes:
        raise ValueError("the pose sequence is empty")
    if frames < len(classes):
        picked = np.linspace(0, len(classes) - 1, frames).round().astype(int)
        return [(classes[i], 1) for i in picked]
    base, extra = divmod(frames, len(classes))
    return [(c, base + (i < extra)) for i, c in enumerate(classes)]


def _front_azimuth(joints: np.ndarray) -> float:
    """The azimuth (degrees, :func:`aims_lib.camera.sample_camera`'s convention: 0 is +z, the
    front of the rest pose) of the posed body's front, from its torso's left axis; for a body on
    its side (left axis near vertical) from the horizontal normal of its spine."""
    from aims_lib.body.rotations import EY
    from aims_lib.synth.body_facts import torso_axes

    up, left, _ = (a[0] for a in torso_axes(joints[None]))
    side = left * [1.0, 0.0, 1.0]
    if np.linalg.norm(side) < 0.5 * np.linalg.norm(left):
        side = np.cross(up, EY)
    return math.degrees(math.atan2(side[0], side[2])) - 90.0


def _video_codec() -> str:
    """The first of :data:`VIDEO_CODECS` that this PyAV's FFmpeg can encode."""
    import av

    for name in VIDEO_CODECS:
        try:
            av.codec.Codec(name, "w")
        except ValueError:  # PyAV's UnknownCodecError: not built into this FFmpeg
            continue
        return name
    raise RuntimeError(f"PyAV {av.__version__} encodes none of {', '.join(VIDEO_CODECS)}")


def encode_video(images: Sequence[np.ndarray], fps: float) -> bytes:
    """An MP4 (:func:`_video_codec`, yuv420p) of uint8 RGB frames of one even size, one video
    frame per image at ``fps``: frame ``i`` is shown at ``i / fps`` seconds."""
    import av

    height, width = images[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"video frames need an even width and height (yuv420p), got {width} x {height}")
    rate = Fraction(fps).limit_denominator(1000)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(_video_codec(), rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = 1 / rate
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


def render_demo_session(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    frames: int = 24,
    fps: float = 2.0,
    image_size: int = 256,
    domain: str = "real",
    sequence: Sequence[str] = DEFAULT_SEQUENCE,
) -> DemoSession:
    """Render one infant through ``sequence`` (module docstring) into ``out_dir``; deterministic
    for a seed. ``domain`` picks the generator's look: "real" (the rendering proxy of photographs:
    rooms, colour casts, clothes, sensor noise) or "synthetic" (plain renders). A folder holding
    this session already (its ``demo_session.json`` complete, same settings) is returned as it
    is; one of another or an unfinished session of this module is rendered anew (its frames
    removed first, so none of a longer session mix in); any other non-empty ``out_dir/frames``
    is refused."""
    from PIL import Image
    from tqdm.auto import tqdm

    from aims_lib.body import load_body_model, vertex_parts
    from aims_lib.camera import sample_camera
    from aims_lib.data.format import DOMAINS
    from aims_lib.synth.body_shift import clothing_weights, displace_clothing, sample_clothing, sample_shapes, shifted_body_model
    from aims_lib.synth.domains import DOMAIN_SETTINGS
    from aims_lib.synth.generator import prop_mesh
    from aims_lib.synth.poses import sample_poses
    from aims_lib.synth.render import Renderer, offscreen_platform, sample_appearance

    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    if not (32 <= image_size <= 2048 and image_size % 2 == 0):
        raise ValueError(f"image_size must be an even number of pixels in 32..2048 (the video needs it even), got {image_size}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be > 0, got {fps}")
    plan = segments(sequence, frames)
    out_dir = Path(out_dir)
    folder = out_dir / FRAMES_DIR
    wanted = {"seed": seed, "frames": frames, "fps": fps, "image_size": image_size, "domain": domain,
              "sequence": list(sequence)}
    done = DemoSession(folder, out_dir / VIDEO_FILE, out_dir / LABELS_FILE)
    previous = _settings(out_dir)
    if previous == {**wanted, "complete": True} and done.video.is_file() and done.labels.is_file():
        return done  # the same session, rendered before: rendering is deterministic for a seed
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if previous is None:
            raise ValueError(f"{folder} already exists and is not an empty folder (and no {SETTINGS_FILE} says this "
                             "module wrote it): choose another output folder")
        for old in folder.glob("frame_*.png"):  # our own frames of another or an unfinished session
            old.unlink()
    write_json(out_dir / SETTINGS_FILE, {**wanted, "complete": False})

    rng = np.random.default_rng([seed, 0xDE40])
    settings = DOMAIN_SETTINGS[domain]
    model = shifted_body_model(load_body_model(num_betas=settings.body.own_components), settings.body)
    faces = np.asarray(model.faces, dtype=np.int64)
    template = model.v_template.detach().cpu().numpy()
    parts = vertex_parts(model)
    betas = np.repeat(sample_shapes(rng, 1, settings.body, model), len(plan), axis=0)
    appearance = sample_appearance(domain, rng)
    clothed = max(settings.body.diaper_mm + settings.body.clothing_mm) > 0
    if clothed:
        diaper_m, garment_m = sample_clothing(rng, settings.body)
        diaper_w, garment_w = clothing_weights(appearance.garment, template, parts, faces)
    fov, elevation, fill, side = (float(rng.uniform(*r)) for r in (FOV_DEG, ELEVATION_DEG, FILL, SIDE_DEG))
    poses = sample_poses([fine for fine, _ in plan], rng, model, betas, shift=settings.pose)

    images, rows = [], []
    with Renderer(image_size, backend=offscreen_platform()) as renderer, \
            tqdm(total=sum(n for _, n in plan), unit="frame", desc="rendering demo session", file=sys.stderr) as bar:
        for s, (fine, count) in enumerate(plan):
            verts = poses.vertices[s].astype(np.float64)
            if clothed:
                verts = displace_clothing(displace_clothing(verts, faces, diaper_w, diaper_m), faces, garment_w, garment_m)
            lo, hi = verts.min(0), verts.max(0)
            lying = taxonomy.FINE_TO_COARSE[fine] in ("Prone", "Supine")
            azimuth = (_front_azimuth(poses.joints[s]) + side + (90.0 if lying else 0.0)) % 360.0
            props = [prop_mesh(p) for p in poses.props[s]]
            for _ in range(count):
                camera = sample_camera(
                    rng, 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), image_size,
                    fov_deg=(fov, fov), azimuth_deg=(azimuth - SWAY_DEG[0], azimuth + SWAY_DEG[0]),
                    elevation_deg=(elevation - SWAY_DEG[1], elevation + SWAY_DEG[1]), roll_deg=(-SWAY_DEG[2], SWAY_DEG[2]),
                    fill=(fill - SWAY_FILL, fill + SWAY_FILL), principal_jitter=0.0, aim_offset=0.3,
                )
                rgb = renderer.render(verts, faces, camera, appearance, template, parts, props).rgb
                index = len(images)
                name = f"frame_{index:03d}.png"
                buf = io.BytesIO()
                Image.fromarray(rgb).save(buf, format="PNG")
                atomic_write_bytes(folder / name, buf.getvalue())
                images.append(rgb)
                rows.append({"frame": index, "file": name, "time_s": round(index / fps, 6),
                             "coarse": taxonomy.FINE_TO_COARSE[fine], "fine": fine})
                bar.update()
    atomic_write_bytes(out_dir / VIDEO_FILE, encode_video(images, fps))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(LABEL_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out_dir / LABELS_FILE, text.getvalue().encode())
    write_json(out_dir / SETTINGS_FILE, {**wanted, "complete": True})
    return done


def _settings(out_dir: Path) -> dict[str, object] | None:
    """The settings a previous call wrote into ``out_dir`` (None: none, or not ours)."""
    try:
        data = json.loads((out_dir / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.synth.demo_session", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (a session of other settings there, written by this command, is rendered anew)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--fps", type=float, default=2.0, help="video frame rate (one video frame per photo)")
    parser.add_argument("--image-size", type=int, default=256, help="square side in pixels (even)")
    parser.add_argument("--domain", choices=("real", "synthetic"), default="real")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        session = render_demo_session(args.out, args.seed, args.frames, args.fps, args.image_size, args.domain)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {session.folder}/, {session.video} and {session.labels} in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
