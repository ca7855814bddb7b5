"""The end-to-end predictor and its command line, on the fixture images with a tiny run."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from aims_lib import taxonomy
from aims_lib.data.format import load_dataset
from aims_lib.hipc import HIPCTrainConfig, save_hipc, train_hipc
from aims_lib.image_branch import ImageTrainConfig, train_image_branch
from aims_lib.image_io import read_image
from aims_lib.pose_branch import keypoints2d as k2d
from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator
from aims_lib.predict import AIMSPosePredictor, write_manifest
from aims_lib.predict.cli import main

#: A fit of a few iterations: the test is about plumbing, not accuracy.
TINY_SMPLIFY = {"stage1_iters": 3, "tilts": [0.0], "pose_starts": 1, "explore_iters": 2, "stage2_iters": 3}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictor directory: a 1-epoch image branch, a random HRNet, a 1-epoch HIPC."""
    root = tmp_path_factory.mktemp("predictor")
    fixture = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny" / "annotations.json"
    train_image_branch(fixture, root / "image", ImageTrainConfig(
        level="coarse", method="source_only", arch="resnet18", image_size=32, batch_size=4, epochs=1, iters_per_epoch=1))
    estimator = Pose2DEstimator.load(k2d.CPU_CONFIG)
    torch.save({"state_dict": estimator.model.state_dict()}, root / "pose2d.pth")
    ds = load_dataset(fixture)
    kp = np.stack([s.keypoints_3d for s in ds.samples]).astype(np.float32)
    labels = np.array([s.fine_id for s in ds.samples])
    image_coarse = np.random.default_rng(0).dirichlet(np.ones(4), len(labels))  # stands for the image branch's
    save_hipc(root / "hipc.pt", train_hipc(kp, labels, HIPCTrainConfig(epochs=1, batch_size=8), image_coarse))
    write_manifest(root / "full_model", image_branch=root / "image", pose2d=k2d.CPU_CONFIG,
                   pose2d_checkpoint=root / "pose2d.pth", hipc=root / "hipc.pt", smplify=TINY_SMPLIFY)
    return root / "full_model"


@pytest.fixture(scope="module")
def predictor(run_dir: Path) -> AIMSPosePredictor:
    return AIMSPosePredictor.load(run_dir)


def _images(n: int = 3) -> list[Path]:
    return sorted((Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny" / "images").glob("*.png"))[:n]


def _boxes(files: list[Path]) -> np.ndarray:
    """The fixture's annotated boxes of ``files`` (NaN for other files): the random 2D model of these
    tests finds no infant by itself."""
    ds = load_dataset(_images(1)[0].parents[1] / "annotations.json")
    return np.array([next((s.bbox for s in ds.samples if s.path == f), [np.nan] * 4) for f in files], dtype=float)


def test_manifest_paths_are_relative(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "predictor.json").read_text())
    assert manifest["image_branch"] == "../image" and manifest["hipc"] == "../hipc.pt"
    assert manifest["body_model"] is None and manifest["smplify"]["stage2_iters"] == 3
    with pytest.raises(FileNotFoundError, match="not found"):
        write_manifest(run_dir.parent / "other", image_branch=run_dir / "nowhere", pose2d=k2d.CPU_CONFIG, hipc=run_dir / "x.pt")
    with pytest.raises(FileNotFoundError, match="predictor.json"):
        AIMSPosePredictor.load(run_dir.parent)


def test_predict_on_fixture_images(predictor: AIMSPosePredictor) -> None:
    files = _images()
    pred = predictor.predict(files)
    n = len(files)
    assert len(pred) == n and pred.keypoints_2d.shape == (n, 17, 2) and pred.keypoint_scores.shape == (n, 17)
    assert pred.keypoints_3d.shape == (n, 17, 3) and pred.smplify_failed.shape == (n,)
    assert pred.coarse_probs.shape == pred.image_coarse_probs.shape == (n, 4) and pred.fine_probs.shape == (n, 12)
    np.testing.assert_allclose(pred.fine_probs.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pred.image_coarse_probs.sum(1), 1.0, rtol=1e-5)
    groups = np.array(taxonomy.FINE_TO_COARSE_ID)
    for c in range(4):  # the full model's coarse probabilities: the marginal of its fine ones
        np.testing.assert_allclose(pred.fine_probs[:, groups == c].sum(1), pred.coarse_probs[:, c], rtol=1e-4, atol=1e-6)
    assert all(c in taxonomy.COARSE for c in pred.coarse) and all(f in taxonomy.FINE for f in pred.fine)
    np.testing.assert_allclose(pred.coarse_prob, pred.coarse_probs.max(1))
    assert [taxonomy.COARSE[i] for i in pred.coarse_probs.argmax(1)] == pred.coarse
    np.testing.assert_allclose(pred.fine_prob, pred.fine_probs.max(1))
    ok = ~pred.smplify_failed
    assert np.isfinite(pred.keypoints_3d[ok]).all() and np.isnan(pred.keypoints_3d[~ok]).all()
    # arrays give the same result as files; boxes are used when given
    arrays = [read_image(f) for f in files]
    again = predictor.predict(arrays)
    np.testing.assert_allclose(again.fine_probs, pred.fine_probs, rtol=1e-5, atol=1e-7)
    ds = load_dataset(files[0].parents[1] / "annotations.json")
    boxes = [next(s.bbox for s in ds.samples if s.path == f) for f in files]
    boxed = predictor.predict(files, boxes)
    assert not np.allclose(boxed.image_coarse_probs, pred.image_coarse_probs)
    with pytest.raises(ValueError, match="bboxes"):
        predictor.predict(files, boxes[:1])


def test_cli_on_good_and_bad_files(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _images(2)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    inputs = [good[0], tmp_path / "empty.png", tmp_path / "broken.jpg", tmp_path / "missing.png", good[1]]
    out = tmp_path / "out" / "predictions.csv"
    boxes = good[0].parents[1] / "annotations.json"  # a COCO file: the random 2D model finds no infant by itself
    code = main([*map(str, inputs), "--run", str(run_dir), "--out", str(out), "--overlays", str(tmp_path / "ov"),
                 "--boxes", str(boxes)])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [str(p) for p in inputs]
    assert [r["status"] for r in rows] == ["ok", "error", "error", "error", "ok"]
    assert "empty file" in rows[1]["error"] and "not a readable image" in rows[2]["error"] and "no such file" in rows[3]["error"]
    for r in (rows[0], rows[4]):
        assert r["fine"] in taxonomy.FINE and r["coarse"] in taxonomy.COARSE and 0 < float(r["fine_prob"]) <= 1
        assert len(json.loads(r["keypoints_2d"])) == 17 and len(json.loads(r["keypoints_3d"])) == 17
        assert len(json.loads(r["coarse_probs"])) == len(json.loads(r["image_coarse_probs"])) == 4
        assert r["box_source"] == "given" and r["calibrated"] == "False" and r["coarse_set"] == "[]"
        expected = f"{r['coarse']}, fine pose uncertain" if r["smplify_failed"] == "True" else f"{r['fine']} ({r['coarse']})"
        assert r["answer"] == expected and (r["needs_review"] == "True") == (r["smplify_failed"] == "True")
    err = capsys.readouterr().err
    assert "empty.png" in err and "broken.jpg" in err and "2 of 5 images predicted" in err
    assert sorted(p.name for p in (tmp_path / "ov").iterdir()) == sorted(f"{p.stem}.png" for p in good)
    # nothing predictable: exit status 1, the CSV still lists every file
    code = main([str(tmp_path / "empty.png"), "--run", str(run_dir), "--out", str(tmp_path / "none.csv")])
    assert code == 1 and [r["status"] for r in csv.DictReader((tmp_path / "none.csv").open())] == ["error"]
    assert main([str(good[0]), "--run", str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 1  # no predictor


def test_a_failing_chunk_is_retried_image_by_image(
    predictor: AIMSPosePredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aims_lib.predict import cli as pr

    files = _images(3)
    original = AIMSPosePredictor.predict
    bad = read_image(files[1])

    def predict(self, images, bboxes=None, batch_size=32):  # noqa: ANN001
        if any(np.array_equal(np.asarray(im), bad) for im in images):
            raise RuntimeError("boom")
        return original(self, images, bboxes, batch_size)

    monkeypatch.setattr(AIMSPosePredictor, "predict", predict)
    # predicted, failed, overlays unwritten, no infant found
    assert pr.run_cli(files, predictor, tmp_path / "p.csv", boxes=_boxes(files)) == (2, 1, 0, 0)
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "error", "ok"] and "boom" in rows[1]["error"]


def test_a_decompression_bomb_is_a_per_file_error(
    predictor: AIMSPosePredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from aims_lib.predict import cli as pr

    good = _images(2)
    Image.new("RGB", (200, 200)).save(tmp_path / "bomb.png")  # 40000 pixels > 2 x 5000
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # the fixture images have 1920
    files = [good[0], tmp_path / "bomb.png", good[1]]
    assert pr.run_cli(files, predictor, tmp_path / "p.csv", boxes=_boxes(files)) == (2, 1, 0, 0)
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert "bomb.png" in rows[1]["error"] and "decompression bomb" in rows[1]["error"]
    assert "bomb.png" in capsys.readouterr().err


def test_the_output_path_is_checked_before_any_work(
    run_dir: Path, predictor: AIMSPosePredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from aims_lib.predict import cli as pr

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before the output path was checked")

    (tmp_path / "a_file").write_text("x")
    image = str(_images(1)[0])
    monkeypatch.setattr(AIMSPosePredictor, "load", fail)
    for out in (tmp_path, tmp_path / "a_file" / "p.csv"):  # a directory; a parent that is a file
        with pytest.raises(SystemExit) as exc:
            main([image, "--run", str(run_dir), "--out", str(out)])
        assert exc.value.code == 2 and str(out) in capsys.readouterr().err
    monkeypatch.setattr(AIMSPosePredictor, "predict", fail)
    with pytest.raises(ValueError, match="is a directory"):
        pr.run_cli(_images(1), predictor, tmp_path)
    with pytest.raises(ValueError, match="overlays"):
        pr.run_cli(_images(1), predictor, tmp_path / "p.csv", overlays=tmp_path / "a_file")
    # interrupted while writing: the previous CSV is left whole, no temporary file stays behind
    monkeypatch.undo()
    (tmp_path / "p.csv").write_text("previous\n")

    def interrupt(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        pr.run_cli(_images(1), predictor, tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text() == "previous\n" and not list(tmp_path.glob(".p.csv*"))


def test_overlays_of_colliding_names_are_all_written(predictor: AIMSPosePredictor, tmp_path: Path) -> None:
    import shutil

    from aims_lib.predict import cli as pr

    src = _images(3)
    files = [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", tmp_path / "c" / "x_1.png"]
    for s, f in zip(src, files):
        f.parent.mkdir()
        shutil.copy(s, f)
    assert pr.run_cli(files, predictor, tmp_path / "p.csv", overlays=tmp_path / "ov", boxes=_boxes(src)) == (3, 0, 0, 0)
    assert len(list((tmp_path / "ov").iterdir())) == 3
    names = pr._overlay_names([Path("x.png"), Path("X.jpg"), Path("x_0.png"), Path("x.bmp")])
    assert len({n.lower() for n in names}) == 4 and names[2] == "x_0.png"  # case-insensitive file systems too


def test_a_failed_fit_gives_a_fine_label_of_the_coarse_one(
    predictor: AIMSPosePredictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aims_lib.pose_branch import lifting

    # Prone 0.4 over 4 children (0.1 each) vs Standing 0.35 over 2 (0.175 each)
    image_coarse = np.array([0.4, 0.05, 0.2, 0.35])
    monkeypatch.setattr(predictor, "_coarse_probs", lambda images, boxes, batch_size: np.tile(image_coarse, (len(images), 1)))
    monkeypatch.setattr(lifting, "fit_failures", lambda fit, size, max_rep: np.ones(len(size), bool))
    pred = predictor.predict(_images(1))
    assert pred.smplify_failed.all() and pred.coarse == ["Prone"]
    np.testing.assert_allclose(pred.coarse_probs, pred.image_coarse_probs, rtol=1e-4, atol=1e-6)  # the image branch alone
    assert pred.fine == ["Prone Lying"] and taxonomy.FINE_TO_COARSE[pred.fine[0]] == pred.coarse[0]
    np.testing.assert_allclose(pred.fine_prob, [0.1], rtol=1e-4)
    np.testing.assert_allclose(pred.fine_prob, pred.fine_probs[0, pred.fine_id], rtol=1e-6)


def test_a_moved_run_directory_still_loads(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "orig"
    shutil.copytree(run_dir.parent, root)
    write_manifest(root / "full_model", image_branch=root / "image", pose2d=k2d.CPU_CONFIG,
                   pose2d_checkpoint=root / "pose2d.pth", hipc=root / "hipc.pt", smplify=TINY_SMPLIFY)
    moved = tmp_path / "elsewhere" / "deeper" / "moved"
    moved.parent.mkdir(parents=True)
    shutil.move(root, moved)  # the whole tree, at another depth; the package's config stays where it is
    assert not root.exists()
    pred = AIMSPosePredictor.load(moved / "full_model").predict(_images(1))
    assert len(pred) == 1 and pred.fine[0] in taxonomy.FINE
    shutil.move(moved / "full_model", tmp_path / "alone")  # moved away from its siblings: a clear error
    with pytest.raises(FileNotFoundError, match="image_branch"):
        AIMSPosePredictor.load(tmp_path / "alone")


@pytest.mark.parametrize(("arch", "classes"), [("resnet34", 4), ("resnet18", 12)])
def test_a_checkpoint_of_another_model_is_a_one_line_error(run_dir: Path, tmp_path: Path, arch: str, classes: int) -> None:
    import shutil

    from aims_lib.image_branch.model import ImageBranch

    root = run_dir.parent
    shutil.copytree(root / "image", tmp_path / "image")
    torch.save({"model": ImageBranch(arch, classes).state_dict(), "epoch": 0}, tmp_path / "image" / "checkpoints" / "best.pt")
    write_manifest(tmp_path / "full", image_branch=tmp_path / "image", pose2d=k2d.CPU_CONFIG,
                   pose2d_checkpoint=root / "pose2d.pth", hipc=root / "hipc.pt")
    with pytest.raises(ValueError) as exc:
        AIMSPosePredictor.load(tmp_path / "full")
    message = str(exc.value)
    assert "\n" not in message and "best.pt" in message
    assert f"{arch} with {classes} classes" in message and "resnet18 with 4 classes" in message


def test_a_legacy_body_model_loads_only_when_the_run_names_it_trusted(run_dir: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A body model that needs full unpickling (here: an OrderedDict) is refused by default, by
    the API and the CLI, and loads with ``trust=("body_model",)`` / ``--trust body_model``."""
    import pickle
    from collections import OrderedDict

    from aims_lib.body import procedural_arrays
    from aims_lib.predict.cli import main
    from aims_lib.safe_pickle import UnsafePickleError

    legacy = tmp_path / "legacy_body.pkl"
    legacy.write_bytes(pickle.dumps(OrderedDict(procedural_arrays()), protocol=2))
    run = tmp_path / "full_model"
    write_manifest(run, image_branch=run_dir.parent / "image", pose2d=k2d.CPU_CONFIG,
                   pose2d_checkpoint=run_dir.parent / "pose2d.pth", hipc=run_dir.parent / "hipc.pt",
                   body_model=legacy, smplify=TINY_SMPLIFY)
    with pytest.raises(UnsafePickleError, match=r"legacy_body.pkl: refuses to load collections.OrderedDict.*--trust body_model"):
        AIMSPosePredictor.load(run)
    with pytest.raises(ValueError, match="unknown component"):
        AIMSPosePredictor.load(run, trust=("everything",))
    assert AIMSPosePredictor.load(run, trust=("body_model",)).smplify is not None
    image = str(_images(1)[0])
    assert main([image, "--run", str(run), "--out", str(tmp_path / "a.csv")]) == 1
    assert "refuses to load collections.OrderedDict" in capsys.readouterr().err
    assert main([image, "--run", str(run), "--out", str(tmp_path / "b.csv"), "--trust", "body_model"]) == 0


# --- outputs never overwrite inputs, finished work survives, device and moved predictors (issue #24)


def _argparse_exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI expecting argparse's exit status 2; returns what it wrote to stderr."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def _never(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("the predictor loaded although the arguments were refused")


def test_an_output_over_an_input_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from aims_lib.predict import cli as pr

    photos = tmp_path / "photos"
    photos.mkdir()
    for src, name in zip(_images(3), ("a.png", "b.jpg", "x.jpg")):
        shutil.copy(src, photos / name)
    (photos / "x.png").write_bytes(b"a file beside the input x.jpg")  # what x.jpg's overlay would replace
    (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    before = {p: p.read_bytes() for p in photos.iterdir()}
    monkeypatch.setattr(AIMSPosePredictor, "load", _never)
    run = ["--run", str(tmp_path), "--out", str(tmp_path / "p.csv")]
    for inputs, overlays in (([photos], photos),  # the input folder as --overlays
                             ([photos / "x.jpg"], photos / "sub" / ".."),  # x.png beside the input x.jpg
                             ([photos / "a.png"], tmp_path / "link")):  # the same folder through a link
        err = _argparse_exit([*map(str, inputs), *run, "--overlays", str(overlays)], capsys)
        assert f"overlays directory {overlays} is the folder of the input {photos}/" in err
    for out in (photos / "b.jpg", tmp_path / "link" / "b.jpg"):  # --out naming an input, also through a link
        err = _argparse_exit([str(photos), "--run", str(tmp_path), "--out", str(out)], capsys)
        assert f"output CSV {out} is the input {photos / 'b.jpg'}" in err
    assert {p: p.read_bytes() for p in photos.iterdir()} == before
    files = pr.expand_inputs([photos])
    pr.check_outputs(tmp_path / "p.csv", photos / "overlays", files)  # a folder below the inputs' is fine
    pr.check_outputs(tmp_path / "p.csv", tmp_path, files)  # and one above them


def test_a_failing_overlay_keeps_every_prediction(
    predictor: AIMSPosePredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disk fills up after the first overlay: the CSV still holds every prediction, each
    unwritten overlay is named in its row and in one line on stderr, and the exit status is 1."""
    import errno
    import re

    from aims_lib.predict import cli as pr

    written: list[Path] = []
    write_overlay = pr.write_overlay

    def full_after_one(path: Path, *args: Any) -> None:
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_overlay(path, *args)
        written.append(path)

    monkeypatch.setattr(pr, "write_overlay", full_after_one)
    monkeypatch.setattr(AIMSPosePredictor, "load", lambda *args, **kwargs: predictor)
    files, out, ov = _images(3), tmp_path / "p.csv", tmp_path / "ov"
    code = main([*map(str, files), "--run", str(tmp_path), "--out", str(out), "--overlays", str(ov), "--chunk", "2",
                 "--boxes", str(files[0].parents[1] / "annotations.json")])
    assert code == 1
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows] == ["ok"] * 3 and all(r["fine"] in taxonomy.FINE for r in rows)
    assert rows[0]["overlay_error"] == "" and [p.name for p in ov.iterdir()] == [f"{files[0].stem}.png"]
    for f, r in zip(files[1:], rows[1:]):
        assert r["overlay_error"] == f"cannot write {ov / f'{f.stem}.png'}: No space left on device"
    err = capsys.readouterr().err
    lines = re.split(r"[\r\n]", err)  # the progress bar redraws itself with carriage returns
    assert [line for line in lines if line.startswith("error:")] == [f"error: {r['overlay_error']}" for r in rows[1:]]
    assert "3 of 3 images predicted" in err and "2 overlays not written" in err


def test_an_unwritable_csv_is_one_line_and_leaves_the_old_one(
    predictor: AIMSPosePredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    monkeypatch.setattr(AIMSPosePredictor, "load", lambda *args, **kwargs: predictor)
    monkeypatch.setattr(os, "fsync", full)  # the disk fills up while the CSV is written
    assert main([str(_images(1)[0]), "--run", str(tmp_path), "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: cannot write {out}: No space left on device"]
    assert out.read_text() == "previous\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


@pytest.mark.parametrize(("device", "says"), [
    ("cuda", "device 'cuda': torch sees no CUDA GPU on this machine"),
    ("cuda:1", "device 'cuda:1': torch sees no CUDA GPU on this machine"),
    ("gpu", "unknown device 'gpu': valid are auto, cpu, cuda, cuda:N"),
])
def test_a_device_this_machine_lacks_is_one_line_before_anything_loads(
    device: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(AIMSPosePredictor, "load", _never)
    err = _argparse_exit([str(_images(1)[0]), "--run", str(tmp_path), "--out", str(tmp_path / "p.csv"), "--device", device], capsys)
    assert len(err.splitlines()) == 1 and err.startswith(f"python -m aims_lib.predict: error: --device: {says}")
    assert not (tmp_path / "p.csv").exists()


def test_a_predictor_copied_without_its_siblings_warns(run_dir: Path, tmp_path: Path) -> None:
    """Its components load from the original tree (``fallback_paths``) with a warning naming each
    one; the 2D config, a file of this repository's ``configs/``, loads from there silently."""
    import re
    import shutil

    copy = tmp_path / "a" / "b" / "alone"  # at another depth: the config's relative path breaks too
    shutil.copytree(run_dir, copy)
    with pytest.warns(UserWarning, match="is not beside the predictor") as record:
        assert AIMSPosePredictor.load(copy).hipc is not None
    warned = {m.group(1): str(w.message) for w in record
              if (m := re.match(r".*predictor\.json: (\w+) '.*' is not beside the predictor", str(w.message)))}
    assert set(warned) == {"image_branch", "pose2d_checkpoint", "hipc"}
    assert f"loading {(run_dir.parent / 'image').resolve()} instead" in warned["image_branch"]


def test_an_image_without_an_infant_is_answered_so(predictor: AIMSPosePredictor, run_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Blank, noise and a thumbnail get "no infant found" (and the whole image as their box), not a label."""
    rng = np.random.default_rng(0)
    images = [np.zeros((64, 64, 3), np.uint8), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
              rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)]
    pred = predictor.predict(images)
    assert pred.no_infant.all() and pred.needs_review.all() and pred.answer == ["no infant found"] * 3
    assert pred.box_source == ["whole image"] * 3 and "too small (8 x 8 px)" in pred.review_reason[2]
    np.testing.assert_allclose(pred.boxes[2], [0, 0, 8, 8])
    for i, im in enumerate(images):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    assert main([str(tmp_path / f"{i}.png") for i in range(3)] + ["--run", str(run_dir), "--out",
                str(tmp_path / "out.csv")]) == 0
    assert [r["status"] for r in csv.DictReader((tmp_path / "out.csv").open())] == ["no_infant"] * 3
    assert "(3 with no infant found)" in capsys.readouterr().err


def test_a_calibrated_run_gives_sets_and_answers(run_dir: Path) -> None:
    """calibration.json beside the manifest: pooled probabilities, conformal sets, hierarchical
    answers; write_manifest removes it (it belongs to the components it was fitted on)."""
    import shutil

    from aims_lib.calibration import Calibration
    from aims_lib.conformal import hierarchical_answers, prediction_sets
    from aims_lib.predict import CALIBRATION

    copy = run_dir.parent / "full_model_calibrated"
    shutil.copytree(run_dir, copy)
    calibration = Calibration(coarse_temperature=1.5, pose_temperature=2.0, image_weight=0.5, pose_weight=2.0, level=0.9,
                              coarse_threshold=0.6, fine_threshold=0.85)
    calibration.save(copy / CALIBRATION)
    files = _images(3)
    raw = AIMSPosePredictor.load(copy, calibrated=False).predict(files, _boxes(files))
    pred = AIMSPosePredictor.load(copy).predict(files, _boxes(files))
    assert pred.calibrated and not raw.calibrated
    coarse, fine = calibration.calibrated(raw.image_coarse_probs, np.log(raw.fine_probs))
    np.testing.assert_allclose(pred.fine_probs, fine, rtol=1e-6)
    np.testing.assert_allclose(pred.coarse_probs, coarse, rtol=1e-6)
    fine_sets = prediction_sets(fine, 0.85)
    assert pred.fine_set == [[taxonomy.FINE[j] for j in np.flatnonzero(r)] for r in fine_sets]
    answers = hierarchical_answers(prediction_sets(coarse, 0.6), fine_sets, coarse, fine)
    for i, a in enumerate(answers):
        if pred.smplify_failed[i] and a.kind != "uncertain":
            assert pred.answer[i] == f"{a.coarse}, fine pose uncertain" and pred.needs_review[i]
            assert pred.answer_coarse[i] == a.coarse and pred.answer_fine[i] is None
        else:
            assert pred.answer[i] == a.text and pred.needs_review[i] == (a.kind == "uncertain" or pred.smplify_failed[i])
            assert (pred.answer_coarse[i], pred.answer_fine[i]) == (a.coarse, a.fine)
    write_manifest(copy, image_branch=run_dir.parent / "image", pose2d=k2d.CPU_CONFIG,
                   pose2d_checkpoint=run_dir.parent / "pose2d.pth", hipc=run_dir.parent / "hipc.pt")
    assert not (copy / CALIBRATION).exists()
