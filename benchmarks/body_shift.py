"""What the real proxy's body shift does to the body and to SMPLify (:mod:`aims_lib.synth.body_shift`).

Prints, for bodies drawn as the generator draws them (:data:`SYNTHETIC` and :data:`REAL`) on the
procedural infant:

* model mismatch: the rest-pose shaped template against its least-squares best fit by the
  standard body's first DEFAULT_BETAS components plus a translation (mean per-vertex error, mm;
  the mismatch SMPLify meets), and the same for the 17 keypoints;
* bone lengths (hip-knee, knee-ankle, shoulder-elbow, elbow-wrist): mean, spread, range, the
  largest change the region directions alone make, and left/right asymmetry |L - R| / mean;
* faces that flip (normal against the mean body's) in the rest pose, and on posed, clothed
  meshes at the thickest clothing;
* the pose sampler's acceptance rate per class (class predicates, self-intersection, limits)
  for both domains;
* PA-MPJPE (nose-to-pelvis units) of SMPLify with the standard body from exact 2D keypoints of
  posed bodies seen by random cameras, synthetic against real bodies (same classes, same
  camera draws).

Run: ``.venv/bin/python benchmarks/body_shift.py [--bodies 2000] [--fits 48] [--seed 0]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aims_lib.body import DEFAULT_BETAS, body_forward, coco17_keypoints, load_body_model, vertex_parts
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.camera import project, sample_camera, to_camera
from aims_lib.pose_branch.metrics import pa_mpjpe
from aims_lib.pose_branch.smplify import SMPLify
from aims_lib.synth.appearance import sample_appearance
from aims_lib.synth.body_shift import (
    REAL,
    SYNTHETIC,
    BodyShift,
    clothing_weights,
    displace_clothing,
    sample_shapes,
    shifted_body_model,
)
from aims_lib.synth.body_facts import body_info
from aims_lib.synth.generator import CAMERA_FILL
from aims_lib.synth.poses import POSE_SPECS, _accept, _candidates, sample_poses
from aims_lib.taxonomy import FINE, normalise_keypoints_3d

BONES = {
    "hip-knee": ("hip", "knee"),
    "knee-ankle": ("knee", "ankle"),
    "shoulder-elbow": ("shoulder", "elbow"),
    "elbow-wrist": ("elbow", "wrist"),
}


def rest_bodies(model: torch.nn.Module, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out = body_forward(model, betas=torch.as_tensor(betas, dtype=torch.float32))
    return out.vertices.numpy().astype(np.float64), out.joints.numpy().astype(np.float64)


def mismatch(standard: torch.nn.Module, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean per-vertex and per-keypoint error (N,) in mm of the least-squares fit of ``vertices``
    (N, V, 3) by the standard body's shape space plus a translation."""
    template = standard.v_template.numpy().astype(np.float64)
    dirs = standard.shapedirs.numpy().astype(np.float64)[..., :DEFAULT_BETAS].reshape(-1, DEFAULT_BETAS)
    basis = np.concatenate([dirs, np.tile(np.eye(3), (len(template), 1))], axis=1)
    target = (vertices - template).reshape(len(vertices), -1).T
    coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
    fitted = template + (basis @ coef).T.reshape(vertices.shape)
    with torch.no_grad():
        jreg = standard.J_regressor.numpy().astype(np.float64)
    kp_fit = coco17_keypoints(fitted, np.einsum("jv,nvc->njc", jreg, fitted))
    kp_true = coco17_keypoints(vertices, np.einsum("jv,nvc->njc", jreg, vertices))
    return (
        1e3 * np.linalg.norm(fitted - vertices, axis=-1).mean(-1),
        1e3 * np.linalg.norm(kp_fit - kp_true, axis=-1).mean(-1),
    )


def bone_lengths(joints: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 2) lengths (left, right) per bone."""
    return {
        name: np.stack(
            [np.linalg.norm(joints[:, J[f"{s}_{b}"]] - joints[:, J[f"{s}_{a}"]], axis=-1) for s in ("left", "right")], 1
        )
        for name, (a, b) in BONES.items()
    }


def flipped_faces(vertices: np.ndarray, reference: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Share (N,) of faces whose normal points against the reference mesh's."""

    def normals(v: np.ndarray) -> np.ndarray:
        tri = v[..., faces, :]
        return np.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])

    return (np.einsum("...fc,...fc->...f", normals(vertices), normals(reference)) < 0).mean(-1)


def shape_report(name: str, shift: BodyShift, model: torch.nn.Module, standard: torch.nn.Module, n: int, seed: int) -> None:
    betas = sample_shapes(np.random.default_rng(seed), n, shift, model)
    vertices, joints = rest_bodies(model, betas)
    per_vertex, per_keypoint = mismatch(standard, vertices)
    print(f"{name}: {n} bodies, {betas.shape[1]} shape coefficients")
    print(
        f"  model mismatch: mean per-vertex {per_vertex.mean():.2f} mm (median {np.median(per_vertex):.2f}, "
        f"95th pct {np.percentile(per_vertex, 95):.2f}, max {per_vertex.max():.2f}); keypoints {per_keypoint.mean():.2f} mm"
    )
    lengths = bone_lengths(joints)
    mean_body = bone_lengths(rest_bodies(model, np.zeros((1, betas.shape[1])))[1])
    regions_only = betas.copy()
    regions_only[:, : getattr(model, "own_components", betas.shape[1])] = 0.0
    region_lengths = bone_lengths(rest_bodies(model, regions_only)[1])
    for bone, lr in lengths.items():
        ref = mean_body[bone][0, 0]
        asym = np.abs(lr[:, 0] - lr[:, 1]) / lr.mean(1)
        change = np.abs(region_lengths[bone] / mean_body[bone] - 1.0)
        print(
            f"  {bone}: mean {1e3 * lr.mean():.1f} mm, sd {100 * lr.std() / ref:.1f} %, range "
            f"{100 * (lr.min() / ref - 1):+.0f}..{100 * (lr.max() / ref - 1):+.0f} % of the mean body; "
            f"region change max {100 * change.max():.1f} %; |L-R|/mean mean {100 * asym.mean():.2f} %, "
            f"95th pct {100 * np.percentile(asym, 95):.2f} %"
        )
    reference = rest_bodies(model, np.zeros((1, betas.shape[1])))[0]
    flips = flipped_faces(vertices, reference, np.asarray(model.faces, dtype=np.int64))
    print(f"  rest-pose faces flipped against the mean body: mean {100 * flips.mean():.3f} %, max {100 * flips.max():.3f} %")


def acceptance(model: torch.nn.Module, shift: BodyShift, batch: int, seed: int) -> dict[str, float]:
    """Share of first-round candidates the sampler accepts, per class."""
    rng = np.random.default_rng(seed)
    info = body_info(model)
    out = {}
    for label in FINE:
        ok = []
        for spec in POSE_SPECS[label]:
            c = _candidates(spec, rng, sample_shapes(rng, batch, shift, model), info)
            ok.append(_accept(label, c, model)[0])
        out[label] = float(np.concatenate(ok).mean())
    return out


def posed_split(model: torch.nn.Module, shift: BodyShift, n: int, seed: int) -> dict[str, np.ndarray]:
    """Posed bodies with one camera each; the same stream layout for both domains."""
    rng = np.random.default_rng(seed)
    labels = [FINE[i % len(FINE)] for i in range(n)]
    betas = sample_shapes(rng, n, shift, model)
    poses = sample_poses(labels, rng, model, betas)
    keypoints = np.asarray(coco17_keypoints(poses.vertices, poses.joints), dtype=np.float64)
    cam_rng = np.random.default_rng(seed + 1)
    pixels, Ks, truth = [], [], []
    for vertices, points in zip(poses.vertices, keypoints):
        lo, hi = vertices.min(0), vertices.max(0)
        camera = sample_camera(cam_rng, 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), 256, fill=CAMERA_FILL)
        pixels.append(project(points, camera.K, camera.R, camera.T))
        Ks.append(camera.K)
        truth.append(normalise_keypoints_3d(to_camera(points, camera.R, camera.T)))
    return {"pixels": np.stack(pixels), "K": np.stack(Ks), "truth": np.stack(truth), "vertices": poses.vertices}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bodies", type=int, default=2000)
    parser.add_argument("--accept-batch", type=int, default=24, help="candidates per pose variant for the acceptance rates")
    parser.add_argument("--fits", type=int, default=48, help="posed bodies per domain fitted by SMPLify (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    standard = load_body_model(num_betas=DEFAULT_BETAS)
    models = {
        "synthetic": shifted_body_model(standard, SYNTHETIC),
        "real": shifted_body_model(load_body_model(num_betas=None), REAL),
    }
    shifts = {"synthetic": SYNTHETIC, "real": REAL}
    for name in models:
        shape_report(name, shifts[name], models[name], standard, args.bodies, args.seed)

    # Clothing at its thickest on posed bodies: flipped faces against the unclothed mesh.
    split = posed_split(models["real"], REAL, 24, args.seed)
    faces = np.asarray(standard.faces, dtype=np.int64)
    template, parts = standard.v_template.numpy().astype(np.float64), vertex_parts(standard)
    rng = np.random.default_rng(args.seed)
    flips = []
    for vertices in split["vertices"]:
        diaper, garment = clothing_weights(sample_appearance("real", rng).garment, template, parts, faces)
        dressed = displace_clothing(vertices, faces, diaper, 1e-3 * REAL.diaper_mm[1])
        dressed = displace_clothing(dressed, faces, garment, 1e-3 * REAL.clothing_mm[1])
        flips.append(flipped_faces(dressed.astype(np.float64), vertices.astype(np.float64), faces))
    print(
        f"posed bodies with the thickest diaper and garment: faces flipped mean {100 * np.mean(flips):.3f} %, "
        f"max {100 * np.max(flips):.3f} %"
    )

    for name in models:
        start = time.perf_counter()
        rates = acceptance(models[name], shifts[name], args.accept_batch, args.seed)
        shares = " ".join(f"{rates[f]:.2f}" for f in FINE)
        print(f"{name} sampler acceptance per class ({time.perf_counter() - start:.0f} s): {shares}")

    if args.fits:
        smplify = SMPLify(standard)
        for name in models:
            split = posed_split(models[name], shifts[name], args.fits, args.seed)
            start = time.perf_counter()
            fit = smplify.fit(split["pixels"], np.ones(split["pixels"].shape[:2]), split["K"]).numpy()
            pa = pa_mpjpe(fit["keypoints_3d"], split["truth"])
            print(
                f"{name}: SMPLify from exact 2D, {args.fits} bodies: PA-MPJPE mean {np.nanmean(pa):.4f} "
                f"median {np.nanmedian(pa):.4f}, reprojection {np.nanmean(fit['reprojection_error']):.2f} px, "
                f"failed {int(fit['failed'].sum())} ({time.perf_counter() - start:.0f} s)"
            )


if __name__ == "__main__":
    main()
