"""The embedded AIMS data generator: body + poses + camera + renderer -> images + annotations.

The run is planned up front from the seed: every sample has an id, a fine class (balanced over
the 12 classes in each domain), a domain and a split. Samples are made in fixed chunks; chunk
``c`` draws everything from ``default_rng([seed, c])``, so the content of a sample never
depends on the number of workers or on where an interrupted run resumed. A chunk is finished
when its record file ``records/chunk_NNNNN.json`` exists (written atomically after its images)
and every image it lists decodes; a resumed run skips finished chunks and redoes the others
(a chunk with a missing or corrupt image is redone whole: its images share one random stream).
Before that it checks that the folder holds a run with the same arguments (``generator.json``,
or ``annotations.json`` when the manifest is gone) and removes the temporary files that a
killed run's atomic writes left. ``annotations.json`` is assembled from the records at the
end, so the same seed gives byte-identical files. One run at a time per folder.

The body is the procedural infant unless ``body`` names an SMPL-format file (SMIL's
``smil_web.pkl``), read through the safe loader. Shapes are drawn from the body's own shape
space as SMPL-family models define it: the first :data:`~aims_lib.body.DEFAULT_BETAS` shape
coefficients, each a standard normal (the components are PCA directions scaled to one standard
deviation) clipped to +-2 sd, the same draw for either body. Keypoints, 3D keypoints, cameras and
body parameters in the annotations are those of the body used; ``info.body`` and each
annotation's ``body.model`` name it.

Sources: ``docs/references.md#paper``, ``docs/references.md#smil``.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
from aims_lib.data.format import (
    ANNOTATIONS_FILE,
    DOMAINS,
    UnreadableImage,
    decoded_image_size,
    new_dataset,
    write_dataset,
)
from aims_lib.files import atomic_write_bytes, write_json
from aims_lib.synth.occlusion import SYNTHETIC as PHOTO_SYNTHETIC

log = logging.getLogger(__name__)

#: 2: the real proxy's own bodies, occluders and framing; 3: and its own pose distribution
#: (aims_lib.synth.domains).
GENERATOR_VERSION: Final[str] = "3"
CHUNK_SIZE: Final[int] = 32
#: Paper scale: 198 of the 750 real images are the test split (Sec. 5); we hold out a further
#: 10 % of the real images for validation (model selection never looks at the test split).
REAL_TEST_FRACTION: Final[float] = 198 / 750
REAL_VAL_FRACTION: Final[float] = 0.10
JPEG_QUALITY: Final[int] = 95
#: Names of the temporary files ``atomic_write_bytes`` writes beside their target.
TEMPORARY_GLOB: Final[str] = ".*.tmp"
MANIFEST_FILE: Final[str] = "generator.json"
MAX_CAMERA_TRIES: Final[int] = 20
#: The synthetic domain's framing (aims_lib.synth.occlusion.SYNTHETIC): keypoints that must land
#: inside the image, else the camera is redrawn, and the share of the image that the body's
#: bounding sphere spans (a lying body covers much less than its sphere, so the range sits high).
MIN_KEYPOINTS_IN_IMAGE: Final[int] = PHOTO_SYNTHETIC.framing.min_keypoints
CAMERA_FILL: Final[tuple[float, float]] = PHOTO_SYNTHETIC.framing.shots[0].fill

REAL_DOMAIN_NOTE: Final[str] = (
    "Embedded benchmark rendered by aims_lib.synth. Both domains are renders of a procedural "
    "infant body: 'synthetic' imitates the paper's SMIL renders, 'real' is a rendering proxy of "
    "real photographs (photographic floors and out-of-focus backdrops, colour casts, directional lighting; "
    "bodies outside the fitted shape space with clothes, occluders, close, high and cropped framing). "
    "No real infant appears in this data; numbers on it are not the paper's numbers."
)
BODY_FILE_NOTE: Final[str] = (
    "Rendered by aims_lib.synth from the body model {body}: 'synthetic' imitates the paper's SMIL renders, "
    "'real' (when present) is a rendering proxy of real photographs."
)
PROCEDURAL_BODY: Final[str] = "procedural-infant"


@dataclass(frozen=True)
class GeneratorConfig:
    """Arguments of one generator run; stored in the dataset's ``info`` block."""

    n_synthetic: int
    n_real: int
    image_size: int = 256
    seed: int = 0
    workers: int = 1
    body: str | None = None  # SMPL-format body file (e.g. smil_web.pkl); None: the procedural infant
    trust_body: bool = False  # opt-in: unpickle ``body`` fully (SECURITY.md)

    def arguments(self) -> dict[str, Any]:
        """What makes the data (recorded in ``info.arguments``, compared on resume): the body by
        file name and content digest, and only when one is given, so that procedural runs keep
        their bytes; not the workers or the trust."""
        args: dict[str, Any] = {k: v for k, v in asdict(self).items() if k not in ("workers", "body", "trust_body")}
        if self.body is not None:
            args |= {"body": Path(self.body).name, "body_sha256": hashlib.sha256(Path(self.body).read_bytes()).hexdigest()}
        return args

    def validate(self) -> None:
        if self.body is not None and not Path(self.body).is_file():
            raise ValueError(f"body model not found: {self.body}")
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
    for domain in DOMAINS:
        part = [p for p in plan if p.domain == domain]
        out += [part[i : i + CHUNK_SIZE] for i in range(0, len(part), CHUNK_SIZE)]
    return out


def prop_mesh(prop: Any) -> Any:
    """A pose prop (e.g. the back support) as a placed, coloured trimesh mesh."""
    mesh = prop.world_mesh()
    mesh.visual.vertex_colors = np.append(np.asarray(prop.color) * 255, 255).astype(np.uint8)
    return mesh


def _round(a: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


class _ChunkMaker:
    """Per-process state: one body model per domain (:data:`~aims_lib.synth.domains.DOMAIN_SETTINGS`:
    the real proxy's has its region directions) and an offscreen renderer, built once per worker."""

    def __init__(self, image_size: int, body: str | None = None, trust_body: bool = False) -> None:
        import torch

        from aims_lib.body import load_body_model, vertex_parts
        from aims_lib.synth.body_shift import shifted_body_model
        from aims_lib.synth.domains import DOMAIN_SETTINGS
        from aims_lib.synth.render import Renderer

        torch.set_num_threads(1)
        self.image_size, self.body = image_size, body
        self.body_name = Path(body).name if body else PROCEDURAL_BODY
        self.models = {
            domain: shifted_body_model(load_body_model(body, num_betas=d.body.own_components, trusted=trust_body), d.body)
            for domain, d in DOMAIN_SETTINGS.items()
        }
        model = self.models["synthetic"]
        self.faces = np.asarray(model.faces, dtype=np.int64)
        self.template = model.v_template.detach().cpu().numpy()
        self.parts = vertex_parts(model)
        self.renderer = Renderer(image_size)

    def make(self, out_dir: Path, seed: int, chunk_index: int, samples: list[PlannedSample]) -> list[dict[str, Any]]:
        from PIL import Image

        from aims_lib.body import coco17_keypoints
        from aims_lib.camera import bbox_from_mask, keypoint_visibility, project
        from aims_lib.synth.body_shift import clothing_weights, displace_clothing, sample_clothing, sample_shapes
        from aims_lib.synth.domains import DOMAIN_SETTINGS
        from aims_lib.synth.occlusion import draws_occluder, keeps_enough, pick_shot, sample_occluder
        from aims_lib.synth.poses import sample_poses
        from aims_lib.synth.render import sample_appearance

        rng = np.random.default_rng([seed, chunk_index])
        n = len(samples)
        domain = samples[0].domain  # a chunk never mixes domains
        settings, model = DOMAIN_SETTINGS[domain], self.models[domain]
        betas = sample_shapes(rng, n, settings.body, model)
        poses = sample_poses([s.fine for s in samples], rng, model, betas, shift=settings.pose)
        coco3d = coco17_keypoints(poses.vertices, poses.joints)  # the body's joints: before any clothing
        clothed = max(settings.body.diaper_mm + settings.body.clothing_mm) > 0
        records = []
        for i, s in enumerate(samples):
            verts = poses.vertices[i]
            kp3d = np.asarray(coco3d[i], dtype=np.float64)
            lo, hi = verts.min(0), verts.max(0)
            centre = 0.5 * (lo + hi)
            extent = float(0.5 * np.linalg.norm(hi - lo))
            appearance = sample_appearance(s.domain, rng)
            if clothed:
                diaper_m, garment_m = sample_clothing(rng, settings.body)
                diaper_w, garment_w = clothing_weights(appearance.garment, self.template, self.parts, self.faces)
                verts = displace_clothing(displace_clothing(verts, self.faces, diaper_w, diaper_m), self.faces, garment_w, garment_m)
            props = [prop_mesh(p) for p in poses.props[i]]
            occluded = draws_occluder(rng, settings.photo.occlusion)
            for _ in range(MAX_CAMERA_TRIES):
                shot = pick_shot(rng, settings.photo.framing)
                camera = shot.camera(rng, centre, extent, self.image_size)
                occluder = [sample_occluder(rng, verts, kp3d, camera, self.image_size, settings.photo.occlusion)] if occluded else []
                result = self.renderer.render(verts, self.faces, camera, appearance, self.template, self.parts, props + occluder)
                kp2d = project(kp3d, camera.K, camera.R, camera.T)
                vis = keypoint_visibility(kp3d, camera.K, camera.R, camera.T, result.depth, self.image_size)
                unoccluded = (keypoint_visibility(kp3d, camera.K, camera.R, camera.T, result.body_depth, self.image_size)
                              if occluded else None)
                if result.mask.any() and keeps_enough(vis, settings.photo, unoccluded):
                    break
            else:
                raise RuntimeError(
                    f"sample {s.image_id} ({s.fine}, {s.domain}): no camera in {MAX_CAMERA_TRIES} "
                    "tries keeps enough of the infant in the image"
                )
            buf = BytesIO()
            Image.fromarray(result.rgb).save(buf, format="JPEG", quality=JPEG_QUALITY)
            atomic_write_bytes(out_dir / s.file_name, buf.getvalue())
            bbox = bbox_from_mask(result.mask)
            kps = np.concatenate([kp2d, vis[:, None]], axis=1)
            kps[vis == 0, :2] = 0.0  # COCO: unlabelled keypoints are written as zeros
            own = model.own_components
            body_record = {
                "model": self.body_name,
                "betas": _round(betas[i, :own], 5),
                "global_orient": _round(poses.global_orient[i], 6),
                "body_pose": _round(poses.body_pose[i], 6),
                "transl": _round(poses.transl[i], 6),
            }
            if domain != "synthetic":  # how the real proxy's body and pose left the fitted model and the tables
                body_record["regions"] = _round(betas[i, own:], 5)
                body_record["pose_shift"] = list(poses.tags[i])
                if clothed:
                    body_record["clothing_m"] = {"diaper": round(diaper_m, 4), "garment": round(garment_m, 4)}
            annotation = {
                "id": s.image_id, "image_id": s.image_id, "category_id": 1,
                "keypoints": _round(kps.reshape(-1), 2),
                "num_keypoints": int((vis > 0).sum()),
                "bbox": _round(bbox, 2), "area": round(float(result.mask.sum()), 1),
                "iscrowd": 0,
                "keypoints_3d": _round(taxonomy.normalise_keypoints_3d(kp3d), 5),
                "keypoints_3d_world": _round(kp3d, 5),
                "camera": {k: _round(v, 6) for k, v in camera.to_dict().items()},
                "body": body_record,
                "appearance": appearance.to_dict(),
            }
            if domain != "synthetic":
                annotation["photo"] = {"shot": shot.name, "occluder": occluder[0].metadata["occluder"] if occluder else None}
            records.append(
                {
                    "image": {
                        "id": s.image_id, "file_name": s.file_name,
                        "width": self.image_size, "height": self.image_size,
                        "aims_coarse": taxonomy.FINE_TO_COARSE[s.fine], "aims_fine": s.fine,
                        "domain": s.domain, "split": s.split,
                    },
                    "annotation": annotation,
                }
            )
        return records


_MAKER: _ChunkMaker | None = None


def _worker_init(image_size: int, body: str | None = None, trust_body: bool = False) -> None:
    """Build this process's body model and renderer, reusing them across in-process runs
    (a second EGL context in one process fails, so the old renderer is closed first)."""
    global _MAKER
    if _MAKER is not None and (_MAKER.image_size, _MAKER.body) == (image_size, body):
        return
    if _MAKER is not None:
        _MAKER.renderer.close()
    _MAKER = _ChunkMaker(image_size, body, trust_body)


def _worker_run(task: tuple[str, int, int, list[PlannedSample]]) -> tuple[int, int]:
    out_dir, seed, index, samples = task
    assert _MAKER is not None
    records = _MAKER.make(Path(out_dir), seed, index, samples)
    write_json(Path(out_dir) / "records" / f"chunk_{index:05d}.json", records, indent=None, compact=True)
    return index, len(samples)


def _record_path(out_dir: Path, index: int) -> Path:
    return out_dir / "records" / f"chunk_{index:05d}.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); cannot tell which arguments made this run") from None


def _arguments_in_annotations(path: Path) -> dict[str, Any]:
    """The generator arguments recorded in a finished run's ``info`` block."""
    data = _read_json(path)
    info = data.get("info") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: info is missing; cannot tell which arguments made this run")
    arguments = info.get("arguments")
    if not isinstance(arguments, dict):
        raise ValueError(f"{path}: info.arguments is missing; cannot tell which arguments made this run")
    return {"generator_version": info.get("generator_version"), **arguments}


def _check_run_matches(out_dir: Path, config: GeneratorConfig) -> None:
    """Refuse to resume into a directory made with other arguments (it would mix data).

    The arguments come from ``generator.json``, else from ``annotations.json`` (a finished run
    whose manifest was deleted); records that neither file accounts for are refused too.
    """
    manifest = out_dir / MANIFEST_FILE
    mine = {"generator_version": GENERATOR_VERSION, **config.arguments()}
    if manifest.exists():
        source, theirs = manifest, _read_json(manifest)
        if not isinstance(theirs, dict):
            raise ValueError(f"{manifest}: holds a {type(theirs).__name__}, not the generator arguments")
    elif (out_dir / ANNOTATIONS_FILE).exists():
        source = out_dir / ANNOTATIONS_FILE
        theirs = _arguments_in_annotations(source)
    elif any((out_dir / "records").glob("chunk_*.json")):
        raise ValueError(
            f"{out_dir / 'records'} holds generator records but neither {MANIFEST_FILE} nor "
            f"{ANNOTATIONS_FILE} says which arguments made them; use another --out or delete the folder"
        )
    else:
        source, theirs = None, mine
    if theirs != mine:
        diff = {k: (theirs.get(k), mine.get(k)) for k in {**theirs, **mine} if theirs.get(k) != mine.get(k)}
        raise ValueError(
            f"{source} holds a run with other arguments {diff} (existing, requested); "
            "use another --out or delete it"
        )
    if source != manifest:
        write_json(manifest, mine)


def _remove_temporaries(out_dir: Path) -> int:
    """Delete the temporary files a killed run's atomic writes left (only where and as the
    generator writes them); returns how many."""
    folders = [out_dir, out_dir / "records", *(out_dir / "images" / d for d in DOMAINS)]
    removed = 0
    for folder in folders:
        for tmp in folder.glob(TEMPORARY_GLOB):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def _image_is_intact(path: Path) -> bool:
    """Whether ``path`` exists and Pillow decodes all of it (a truncated JPEG does not)."""
    try:
        decoded_image_size(path)
    except UnreadableImage:
        return False
    return True


def _progress(total: int, initial: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="generating", smoothing=0.1)


def generate(config: GeneratorConfig, out_dir: Path | str) -> dict[str, Any]:
    """Run (or resume) the generator; returns a summary with the throughput."""
    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run_matches(out_dir, config)
    _remove_temporaries(out_dir)
    plan = plan_samples(config)
    all_chunks = chunks(plan)
    todo: list[tuple[int, list[PlannedSample]]] = []
    redone: list[str] = []
    for i, c in enumerate(all_chunks):
        if not _record_path(out_dir, i).exists():
            todo.append((i, c))
            continue
        broken = [s.file_name for s in c if not _image_is_intact(out_dir / s.file_name)]
        if broken:  # a finished chunk whose image was damaged since: make the chunk again
            todo.append((i, c))
            redone += broken
    done_images = len(plan) - sum(len(c) for _, c in todo)
    tasks = [(str(out_dir), config.seed, i, c) for i, c in todo]

    start = time.perf_counter()
    made, platform = 0, None
    if tasks:
        from aims_lib.synth.render import offscreen_platform

        platform = offscreen_platform()  # probed once per process; worker processes inherit it
        os.environ["PYOPENGL_PLATFORM"] = platform
        log.info("generator: rendering %d images with OpenGL on %s", sum(len(c) for _, c in todo), platform)
        bar = _progress(len(plan), done_images)
        for _, n in _run_tasks(tasks, config):
            made += n
            bar.update(n)
        bar.close()
    seconds = time.perf_counter() - start

    info: dict[str, Any] = {
        "source": "embedded-generator",
        "description": REAL_DOMAIN_NOTE,
        "generator_version": GENERATOR_VERSION,
        "seed": config.seed,
        "arguments": config.arguments(),
    }
    if config.body is not None:
        info |= {"description": BODY_FILE_NOTE.format(body=Path(config.body).name), "body": Path(config.body).name}
    data = new_dataset(info)
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
        "redone_images": redone,
        "seconds": round(seconds, 2),
        "images_per_second": round(made / seconds, 2) if made else None,
        "render_platform": platform,  # None: nothing was rendered (a finished run)
    }
    return summary


def _run_tasks(tasks: list[tuple[str, int, int, list[PlannedSample]]], config: GeneratorConfig) -> Iterator[tuple[int, int]]:
    if config.workers == 1:
        _worker_init(config.image_size, config.body, config.trust_body)
        yield from map(_worker_run, tasks)
        return
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked GL or torch state
    with ctx.Pool(config.workers, initializer=_worker_init, initargs=(config.image_size, config.body, config.trust_body)) as pool:
        yield from pool.imap_unordered(_worker_run, tasks)


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))
