"""The embedded AIMS data generator: body + poses + camera + renderer -> images + annotations.

The run is planned up front from the seed: every sample has an id, a fine class (balanced over
the 12 classes in each domain), a domain and a split. Samples are made in fixed chunks; chunk
``c`` draws everything from ``default_rng([seed, c])``, so the content of a sample never
depends on the number of workers or on where an interrupted run resumed. A chunk is finished
when its record file ``records/chunk_NNNNN.json`` exists (written atomically after its images);
a resumed run skips finished chunks and redoes the others. ``annotations.json`` is assembled
from the records at the end, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import atomic_write_bytes, new_dataset, write_dataset

GENERATOR_VERSION: Final[str] = "1"
CHUNK_SIZE: Final[int] = 32
#: Paper scale: 198 of the 750 real images are the test split (Sec. 5); we hold out a further
#: 10 % of the real images for validation (model selection never looks at the test split).
REAL_TEST_FRACTION: Final[float] = 198 / 750
REAL_VAL_FRACTION: Final[float] = 0.10
JPEG_QUALITY: Final[int] = 95
#: Minimum share of keypoints that must land inside the image, else the camera is redrawn.
MIN_KEYPOINTS_IN_IMAGE: Final[int] = 12
MAX_CAMERA_TRIES: Final[int] = 20
#: Share of the image that the body's bounding sphere spans. A lying body covers much less than
#: its bounding sphere, so the range sits higher than a standing person would need.
CAMERA_FILL: Final[tuple[float, float]] = (0.6, 0.9)

REAL_DOMAIN_NOTE: Final[str] = (
    "Embedded benchmark rendered by aims_lib.synth. Both domains are renders of a procedural "
    "infant body: 'synthetic' imitates the paper's SMIL renders, 'real' is a rendering proxy of "
    "real photographs (photographic floors and out-of-focus backdrops, colour casts, directional lighting). "
    "No real infant appears in this data; numbers on it are not the paper's numbers."
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Arguments of one generator run; stored in the dataset's ``info`` block."""

    n_synthetic: int
    n_real: int
    image_size: int = 256
    seed: int = 0
    workers: int = 1

    def validate(self) -> None:
        if self.n_synthetic < 0 or self.n_real < 0:
            raise ValueError(
                f"sample counts must be >= 0, got n_synthetic={self.n_synthetic}, n_real={self.n_real}"
            )
        if self.n_synthetic + self.n_real == 0:
            raise ValueError("nothing to generate: n_synthetic and n_real are both 0")
        if not 32 <= self.image_size <= 2048:
            raise ValueError(f"image_size must be between 32 and 2048 pixels, got {self.image_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class PlannedSample:
    image_id: int
    fine: str
    domain: str
    split: str

    @property
    def file_name(self) -> str:
        return f"images/{self.domain}/{self.image_id:06d}.jpg"


def plan_samples(config: GeneratorConfig) -> list[PlannedSample]:
    """Ids, classes, domains and splits of every sample; a pure function of the config.

    Classes are balanced within each domain (counts differ by at most one). All synthetic
    samples are training data; the real domain is split into train, val and test per class.
    """
    rng = np.random.default_rng([config.seed, 2**31 - 1])
    plan: list[PlannedSample] = []
    next_id = 1
    for domain, n in (("synthetic", config.n_synthetic), ("real", config.n_real)):
        labels = [taxonomy.FINE[i % taxonomy.NUM_FINE] for i in range(n)]
        labels = [labels[i] for i in rng.permutation(n)]
        splits = ["train"] * n
        if domain == "real":
            # Deal the classes round-robin (each class shuffled), then cut test, val, train:
            # every split gets the classes in proportion, even for tiny datasets.
            per_class = [list(rng.permutation([i for i, f in enumerate(labels) if f == fine])) for fine in taxonomy.FINE]
            dealt = [q.pop(0) for _ in range(n) for q in per_class if q][:n]
            n_test = int(round(REAL_TEST_FRACTION * n))
            n_val = int(round(REAL_VAL_FRACTION * n))
            for rank, i in enumerate(dealt):
                splits[i] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
        for fine, split in zip(labels, splits):
            plan.append(PlannedSample(next_id, fine, domain, split))
            next_id += 1
    return plan


def chunks(plan: list[PlannedSample]) -> list[list[PlannedSample]]:
    """Fixed chunks of the plan (a chunk never mixes domains)."""
    out: list[list[PlannedSample]] = []
    for domain in ("synthetic", "real"):
        part = [p for p in plan if p.domain == domain]
        out += [part[i : i + CHUNK_SIZE] for i in range(0, len(part), CHUNK_SIZE)]
    return out


def _prop_mesh(prop: Any) -> Any:
    """A pose prop (e.g. the back support) as a placed, coloured trimesh mesh."""
    mesh = prop.world_mesh()
    mesh.visual.vertex_colors = np.append(np.asarray(prop.color) * 255, 255).astype(np.uint8)
    return mesh


def _round(a: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


class _ChunkMaker:
    """Per-process state: the body model and an offscreen renderer, built once per worker."""

    def __init__(self, image_size: int) -> None:
        import torch

        from aims_lib.body import load_body_model, vertex_parts
        from aims_lib.synth.render import Renderer

        torch.set_num_threads(1)
        self.image_size = image_size
        self.model = load_body_model()
        self.faces = np.asarray(self.model.faces, dtype=np.int64)
        self.template = self.model.v_template.detach().cpu().numpy()
        self.parts = vertex_parts(self.model)
        self.renderer = Renderer(image_size)

    def make(self, out_dir: Path, seed: int, chunk_index: int, samples: list[PlannedSample]) -> list[dict[str, Any]]:
        from PIL import Image

        from aims_lib.body import coco17_keypoints
        from aims_lib.camera import bbox_from_mask, keypoint_visibility, project, sample_camera
        from aims_lib.synth.poses import sample_poses
        from aims_lib.synth.render import sample_appearance

        rng = np.random.default_rng([seed, chunk_index])
        n = len(samples)
        betas = np.clip(rng.normal(0.0, 1.0, size=(n, self.model.num_betas)), -2.0, 2.0)
        poses = sample_poses([s.fine for s in samples], rng, self.model, betas)
        coco3d = coco17_keypoints(poses.vertices, poses.joints)
        records = []
        for i, s in enumerate(samples):
            verts = poses.vertices[i]
            kp3d = np.asarray(coco3d[i], dtype=np.float64)
            lo, hi = verts.min(0), verts.max(0)
            centre = 0.5 * (lo + hi)
            extent = float(0.5 * np.linalg.norm(hi - lo))
            appearance = sample_appearance(s.domain, rng)
            props = [_prop_mesh(p) for p in poses.props[i]]
            for _ in range(MAX_CAMERA_TRIES):
                camera = sample_camera(rng, centre, extent, self.image_size, fill=CAMERA_FILL)
                result = self.renderer.render(verts, self.faces, camera, appearance, self.template, self.parts, props)
                kp2d = project(kp3d, camera.K, camera.R, camera.T)
                vis = keypoint_visibility(kp3d, camera.K, camera.R, camera.T, result.depth, self.image_size)
                if result.mask.any() and int((vis > 0).sum()) >= MIN_KEYPOINTS_IN_IMAGE:
                    break
            else:
                raise RuntimeError(
                    f"sample {s.image_id} ({s.fine}, {s.domain}): no camera in {MAX_CAMERA_TRIES} "
                    "tries keeps the infant in the image"
                )
            buf = BytesIO()
            Image.fromarray(result.rgb).save(buf, format="JPEG", quality=JPEG_QUALITY)
            atomic_write_bytes(out_dir / s.file_name, buf.getvalue())
            bbox = bbox_from_mask(result.mask)
            kps = np.concatenate([kp2d, vis[:, None]], axis=1)
            kps[vis == 0, :2] = 0.0  # COCO: unlabelled keypoints are written as zeros
            records.append(
                {
                    "image": {
                        "id": s.image_id, "file_name": s.file_name,
                        "width": self.image_size, "height": self.image_size,
                        "aims_coarse": taxonomy.FINE_TO_COARSE[s.fine], "aims_fine": s.fine,
                        "domain": s.domain, "split": s.split,
                    },
                    "annotation": {
                        "id": s.image_id, "image_id": s.image_id, "category_id": 1,
                        "keypoints": _round(kps.reshape(-1), 2),
                        "num_keypoints": int((vis > 0).sum()),
                        "bbox": _round(bbox, 2), "area": round(float(result.mask.sum()), 1),
                        "iscrowd": 0,
                        "keypoints_3d": _round(taxonomy.normalise_keypoints_3d(kp3d), 5),
                        "keypoints_3d_world": _round(kp3d, 5),
                        "camera": {k: _round(v, 6) for k, v in camera.to_dict().items()},
                        "body": {
                            "model": "procedural-infant",
                            "betas": _round(betas[i], 5),
                            "global_orient": _round(poses.global_orient[i], 6),
                            "body_pose": _round(poses.body_pose[i], 6),
                            "transl": _round(poses.transl[i], 6),
                        },
                        "appearance": appearance.to_dict(),
                    },
                }
            )
        return records


_MAKER: _ChunkMaker | None = None


def _worker_init(image_size: int) -> None:
    """Build this process's body model and renderer, reusing them across in-process runs
    (a second EGL context in one process fails, so the old renderer is closed first)."""
    global _MAKER
    if _MAKER is not None and _MAKER.image_size == image_size:
        return
    if _MAKER is not None:
        _MAKER.renderer.close()
    _MAKER = _ChunkMaker(image_size)


def _worker_run(task: tuple[str, int, int, list[PlannedSample]]) -> tuple[int, int]:
    out_dir, seed, index, samples = task
    assert _MAKER is not None
    records = _MAKER.make(Path(out_dir), seed, index, samples)
    payload = json.dumps(records, separators=(",", ":")).encode("utf-8")
    atomic_write_bytes(Path(out_dir) / "records" / f"chunk_{index:05d}.json", payload)
    return index, len(samples)


def _record_path(out_dir: Path, index: int) -> Path:
    return out_dir / "records" / f"chunk_{index:05d}.json"


def _check_run_matches(out_dir: Path, config: GeneratorConfig) -> None:
    """Refuse to resume into a directory made with other arguments (it would mix data)."""
    manifest = out_dir / "generator.json"
    mine = {"generator_version": GENERATOR_VERSION, **asdict(config)}
    mine.pop("workers")
    if manifest.exists():
        theirs = json.loads(manifest.read_text())
        if theirs != mine:
            diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
            raise ValueError(
                f"{out_dir} holds a run with other arguments {diff} (existing, requested); "
                "use another --out or delete it"
            )
    else:
        atomic_write_bytes(manifest, json.dumps(mine, indent=2).encode())


def _progress(total: int, initial: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="generating", smoothing=0.1)


def generate(config: GeneratorConfig, out_dir: Path | str) -> dict[str, Any]:
    """Run (or resume) the generator; returns a summary with the throughput."""
    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run_matches(out_dir, config)
    plan = plan_samples(config)
    all_chunks = chunks(plan)
    todo = [(i, c) for i, c in enumerate(all_chunks) if not _record_path(out_dir, i).exists()]
    done_images = len(plan) - sum(len(c) for _, c in todo)
    tasks = [(str(out_dir), config.seed, i, c) for i, c in todo]

    start = time.perf_counter()
    made = 0
    if tasks:
        bar = _progress(len(plan), done_images)
        for _, n in _run_tasks(tasks, config):
            made += n
            bar.update(n)
        bar.close()
    seconds = time.perf_counter() - start

    data = new_dataset(
        {
            "source": "embedded-generator",
            "description": REAL_DOMAIN_NOTE,
            "generator_version": GENERATOR_VERSION,
            "seed": config.seed,
            "arguments": {k: v for k, v in asdict(config).items() if k != "workers"},
        }
    )
    for i in range(len(all_chunks)):
        for rec in json.loads(_record_path(out_dir, i).read_text()):
            data["images"].append(rec["image"])
            data["annotations"].append(rec["annotation"])
    path = write_dataset(data, out_dir, check_images=True)
    summary = {
        "path": str(path),
        "images": len(plan),
        "made_now": made,
        "resumed_from": done_images,
        "seconds": round(seconds, 2),
        "images_per_second": round(made / seconds, 2) if made else None,
    }
    return summary


def _run_tasks(tasks: list[tuple[str, int, int, list[PlannedSample]]], config: GeneratorConfig) -> Iterator[tuple[int, int]]:
    if config.workers == 1:
        _worker_init(config.image_size)
        yield from map(_worker_run, tasks)
        return
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked GL or torch state
    with ctx.Pool(config.workers, initializer=_worker_init, initargs=(config.image_size,)) as pool:
        yield from pool.imap_unordered(_worker_run, tasks)


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))
