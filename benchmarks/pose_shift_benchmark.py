"""How far apart are the synthetic and the real-proxy pose distributions (``aims_lib.synth.pose_shift``)?

Samples every class in both domains with the procedural body (shapes: the generator's draw) and
prints, per class: the acceptance rate of the sampler's candidates, the mean absolute left-right
difference and the spread (sd, both sides pooled) of the shoulder, elbow, hip and knee angles
(measured on the placed joints, degrees), and the share of accepted real samples that are
boundary blends, one-sided or hand contacts. Then the pose-branch classifier (HIPC without the
coarse input) on ground-truth normalised COCO-17 3D keypoints, sized like the quick profile:
trained on 100 synthetic samples a class, tested on 62 a class of each domain (S->S, S->T), and
T->T by 4-fold cross-validation over the real-proxy samples (the issue's validity checks want
T->T >= 80 and T->T - S->T >= 5 points fine). About 15 minutes on 2 cores with the defaults.

    python benchmarks/pose_shift_benchmark.py [--per-class 200] [--seed 0]
    python benchmarks/pose_shift_benchmark.py --shift '{"blend_share": 0.4}'   # REAL with changes
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace

import numpy as np

from aims_lib import taxonomy
from aims_lib.body import DEFAULT_BETAS, coco17_keypoints, load_body_model
from aims_lib.body.rotations import unit
from aims_lib.hipc import HIPCTrainConfig, predict_hipc, train_hipc
from aims_lib.synth.body_facts import torso_axes
from aims_lib.synth.pose_shift import REAL, SYNTHETIC, PoseShift
from aims_lib.synth.poses import PoseBatch, sample_poses
from aims_lib.taxonomy import FINE

#: Joint angles measured on placed bodies (degrees): (name, left joints, right joints); a
#: triple (a, b, c) is the angle at b, a pair (a, b) the angle of the bone a -> b to the torso's
#: downward axis.
ANGLES = (
    ("shoulder", (16, 18), (17, 19)),
    ("elbow", (16, 18, 20), (17, 19, 21)),
    ("hip", (1, 4), (2, 5)),
    ("knee", (1, 4, 7), (2, 5, 8)),
)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(unit(u) * unit(v), -1), -1.0, 1.0)))


def joint_angles(joints: np.ndarray) -> dict[str, np.ndarray]:
    """Left and right angles (N, 2) of :data:`ANGLES` from placed joints (N, J, 3)."""
    up, _, _ = torso_axes(joints)
    out = {}
    for name, *sides in ANGLES:
        cols = []
        for js in sides:
            if len(js) == 3:
                cols.append(_angle(joints[:, js[0]] - joints[:, js[1]], joints[:, js[2]] - joints[:, js[1]]))
            else:
                cols.append(_angle(joints[:, js[1]] - joints[:, js[0]], -up))
        out[name] = np.stack(cols, 1)
    return out


def sample(shift: PoseShift, per_class: int, seed: int, model) -> tuple[PoseBatch, float]:
    rng = np.random.default_rng(seed)
    labels = [label for label in FINE for _ in range(per_class)]
    betas = np.clip(rng.normal(0.0, 1.0, (len(labels), model.num_betas)), -2.0, 2.0)
    t0 = time.perf_counter()
    batch = sample_poses(labels, rng, model, betas, shift=shift)
    return batch, time.perf_counter() - t0


def distribution_table(syn: PoseBatch, real: PoseBatch, per_class: int) -> list[dict]:
    rows = []
    a_syn, a_real = joint_angles(syn.joints), joint_angles(real.joints)
    labels_s, labels_r = np.asarray(syn.fine_labels), np.asarray(real.fine_labels)
    for label in (*FINE, "all"):
        ms = labels_s == label if label != "all" else np.ones(len(labels_s), bool)
        mr = labels_r == label if label != "all" else np.ones(len(labels_r), bool)
        row: dict = {"class": label}
        if label != "all":
            row["accept_syn"] = per_class / syn.drawn[label]
            row["accept_real"] = per_class / real.drawn[label]
        for name, _, _ in ANGLES:
            for dom, a, m in (("syn", a_syn, ms), ("real", a_real, mr)):
                x = a[name][m]
                row[f"{name}_lr_{dom}"] = float(np.abs(x[:, 0] - x[:, 1]).mean())
                row[f"{name}_sd_{dom}"] = float(x.std())
        tags = [real.tags[i] for i in np.flatnonzero(mr)]
        for kind in ("blend", "asymmetric", "contact"):
            row[f"share_{kind}"] = float(np.mean([any(t.startswith(kind) for t in ts) for ts in tags]))
        rows.append(row)
    return rows


def keypoints(batch: PoseBatch) -> tuple[np.ndarray, np.ndarray]:
    kp = taxonomy.normalise_keypoints_3d(np.asarray(coco17_keypoints(batch.vertices, batch.joints), np.float64))
    return kp.astype(np.float32), np.array([taxonomy.fine_id(x) for x in batch.fine_labels])


def transfer(
    model, shift: PoseShift, n_syn: int, n_real: int, folds: int, seed: int, epochs: int, real_epochs: tuple[int, ...]
) -> dict[str, float]:
    """Fine top-1 (%) of HIPC without coarse input on ground-truth 3D, as the benchmark card
    measures its image probes: a synthetic training set of ``n_syn`` a class (``epochs``); S->S
    on ``n_real`` a class of other synthetic samples; S->T on ``n_real`` a class of the real
    proxy; T->T by ``folds``-fold cross-validation over those real-proxy samples, once for each
    of ``real_epochs`` (a smaller training set takes fewer optimiser steps an epoch)."""
    s_train = keypoints(sample(SYNTHETIC, n_syn, 1000 + seed, model)[0])
    s_test = keypoints(sample(SYNTHETIC, n_real, 2000 + seed, model)[0])
    t_kp, t_y = keypoints(sample(shift, n_real, 3000 + seed, model)[0])
    top1 = lambda m, kp, y: float((predict_hipc(m, kp).argmax(1) == y).mean() * 100.0)  # noqa: E731
    m_s = train_hipc(*s_train, HIPCTrainConfig(hierarchical=False, seed=seed, epochs=epochs)).model
    out = {"S->S": top1(m_s, *s_test), "S->T": top1(m_s, t_kp, t_y)}
    for e in real_epochs:
        cfg = HIPCTrainConfig(hierarchical=False, seed=seed, epochs=e)
        correct = 0.0
        for fold in np.array_split(np.random.default_rng(seed).permutation(len(t_y)), folds):
            rest = np.setdiff1d(np.arange(len(t_y)), fold)
            correct += top1(train_hipc(t_kp[rest], t_y[rest], cfg).model, t_kp[fold], t_y[fold]) * len(fold)
        out[f"T->T ({e} epochs)"] = correct / len(t_y)
        out[f"T->T minus S->T ({e} epochs)"] = out[f"T->T ({e} epochs)"] - out["S->T"]
    return {k: round(v, 1) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--synthetic", type=int, default=100, help="synthetic training samples a class")
    ap.add_argument("--real", type=int, default=62, help="real-proxy samples a class (750 in all, as the quick profile)")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=60, help="HIPC epochs of the synthetic model (HIPC's default)")
    ap.add_argument("--real-epochs", type=int, nargs="+", default=[60, 130],
                    help="HIPC epochs of the real-proxy models; 130 gives them the synthetic model's optimiser steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=json.loads, default={}, help="REAL's fields to change, as JSON")
    ap.add_argument("--skip-classifier", action="store_true")
    args = ap.parse_args()
    shift = replace(REAL, **{k: tuple(v) if isinstance(v, list) else v for k, v in args.shift.items()})
    print("real shift:", asdict(shift))
    model = load_body_model(None, num_betas=DEFAULT_BETAS)
    syn, t_syn = sample(SYNTHETIC, args.per_class, args.seed, model)
    real, t_real = sample(shift, args.per_class, args.seed, model)
    print(f"sampling {args.per_class}/class: synthetic {t_syn:.1f} s, real {t_real:.1f} s")
    rows = distribution_table(syn, real, args.per_class)
    head = "class                    acc S  acc T | " + " | ".join(f"{n[:5]:>5} |L-R| S/T  sd S/T" for n, _, _ in ANGLES) + " | blend asym contact"
    print(head)
    for r in rows:
        acc = f"{r['accept_syn']:5.2f}  {r['accept_real']:5.2f}" if "accept_syn" in r else " " * 12
        cells = " | ".join(
            f"{r[f'{n}_lr_syn']:5.1f}/{r[f'{n}_lr_real']:5.1f} {r[f'{n}_sd_syn']:4.1f}/{r[f'{n}_sd_real']:4.1f}" for n, _, _ in ANGLES
        )
        print(f"{r['class']:<24} {acc} | {cells} | {r['share_blend']:.2f}  {r['share_asymmetric']:.2f}  {r['share_contact']:.2f}")
    if not args.skip_classifier:
        t0 = time.perf_counter()
        print("fine top-1 on ground-truth 3D (%):", transfer(model, shift, args.synthetic, args.real, args.folds, args.seed, args.epochs, tuple(args.real_epochs)),
              f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
