"""Files a user hands us never run code when loaded: crafted pickles and checkpoints are refused
before their payload runs, with an error that says why (and, for pickles, how to opt in)."""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from aims_lib.body import load_body_model, procedural_arrays, write_smpl_pickle
from aims_lib.body.smpl_file import REQUIRED_KEYS
from aims_lib.safe_pickle import UnsafePickleError, load_pickle


class Payload:
    """Unpickling this creates ``marker``: what a malicious file would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _crafted_body(path: Path, marker: Path) -> Path:
    data = {k: np.ascontiguousarray(v) for k, v in procedural_arrays().items() if k in REQUIRED_KEYS}
    data["weights"] = Payload(marker)
    path.write_bytes(pickle.dumps(data, protocol=2))
    return path


def test_crafted_body_model_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = _crafted_body(tmp_path / "smil_web.pkl", marker)
    with pytest.raises(UnsafePickleError, match=r"smil_web.pkl: refuses to load posix.system.*trusted=True"):
        load_body_model(path)
    assert not marker.exists()


def test_a_clean_body_model_still_loads_and_trusted_is_an_explicit_opt_in(tmp_path: Path) -> None:
    path = write_smpl_pickle(procedural_arrays(), tmp_path / "infant.pkl")
    assert load_body_model(path).num_betas == 14  # every shape component of the file
    odd = tmp_path / "odd.pkl"  # a harmless class outside the allow-list
    odd.write_bytes(pickle.dumps(OrderedDict(a=np.zeros(3)), protocol=2))
    with pytest.raises(UnsafePickleError, match="collections.OrderedDict"):
        load_pickle(odd)
    assert isinstance(load_pickle(odd, trusted=True), OrderedDict)


def test_crafted_gmm_prior_is_refused(tmp_path: Path) -> None:
    from aims_lib.pose_branch.priors import GMMPosePrior

    marker = tmp_path / "pwned"
    path = tmp_path / "gmm_08.pkl"
    path.write_bytes(pickle.dumps({"means": Payload(marker), "covars": np.eye(3), "weights": np.ones(1)}))
    with pytest.raises(UnsafePickleError, match="gmm_08.pkl: refuses"):
        GMMPosePrior.load(path)
    assert not marker.exists()
    npz = tmp_path / "gmm.npz"
    np.savez(npz, means=np.array([Payload(marker)], dtype=object), covars=np.eye(3), weights=np.ones(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        GMMPosePrior.load(npz)
    assert not marker.exists()


def _crafted_torch_file(path: Path, marker: Path, state: dict) -> Path:
    buf = io.BytesIO()
    torch.save({**state, "extra": Payload(marker)}, buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def test_crafted_hipc_checkpoint_is_refused(tmp_path: Path) -> None:
    from aims_lib.hipc import HIPC_FORMAT, load_hipc

    marker = tmp_path / "pwned"
    path = _crafted_torch_file(tmp_path / "hipc.pt", marker, {"format": HIPC_FORMAT})
    with pytest.raises(UnsafePickleError, match=r"hipc.pt: refuses to load.*posix.system.*no opt-in"):
        load_hipc(path)
    assert not marker.exists()


def test_crafted_image_branch_checkpoint_is_refused_on_resume(aims_tiny: Path, tmp_path: Path) -> None:
    from aims_lib.image_branch import ImageTrainConfig, train_image_branch

    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    _crafted_torch_file(run / "checkpoints" / "last.pt", marker, {"epoch": 0})
    cfg = ImageTrainConfig(arch="resnet18", image_size=32, batch_size=4, epochs=1, iters_per_epoch=1)
    with pytest.raises(UnsafePickleError, match=r"last.pt: refuses to load.*no opt-in"):
        train_image_branch(aims_tiny, run, cfg)
    assert not marker.exists()


def test_mmengine_checkpoints_load_weights_only_and_crafted_ones_are_refused(tmp_path: Path) -> None:
    """Our pose2d runs' checkpoints (weights, NumPy metadata, mmengine's logging buffers) load
    without full unpickling; a crafted one is refused, names the opt-in, and runs nothing."""
    from aims_lib.pose_branch import keypoints2d as k2d
    from aims_lib.pose_branch.mmcv_shim import import_mmpose
    from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator
    from aims_lib.safe_checkpoints import read_checkpoint

    import_mmpose()
    from mmengine.logging.history_buffer import HistoryBuffer

    estimator = Pose2DEstimator.load(k2d.CPU_CONFIG)
    buffer = HistoryBuffer()
    buffer.update(0.5)
    ours = tmp_path / "epoch_1.pth"
    torch.save({"state_dict": estimator.model.state_dict(),
                "meta": {"dataset_meta": {"sigmas": np.ones(17, np.float32)}},
                "message_hub": {"log_scalars": {"train/loss": buffer}}}, ours)
    state = read_checkpoint(ours)
    assert state["message_hub"]["log_scalars"]["train/loss"].mean() == 0.5  # its statistics methods work
    Pose2DEstimator.load(k2d.CPU_CONFIG, checkpoint=ours)

    marker = tmp_path / "pwned"
    crafted = _crafted_torch_file(tmp_path / "crafted.pth", marker, {"state_dict": estimator.model.state_dict()})
    with pytest.raises(pickle.UnpicklingError, match=r"crafted.pth: refused.*trusted=True"):
        Pose2DEstimator.load(k2d.CPU_CONFIG, checkpoint=crafted)
    assert not marker.exists()
    sneaky = tmp_path / "sneaky.pth"  # the getattr stand-in only serves HistoryBuffer statistics
    sneaky.write_bytes(b"\x80\x02c__builtin__\ngetattr\ncos\nsystem\nX\x04\x00\x00\x00pathq\x00\x86R.")
    with pytest.raises(pickle.UnpicklingError):
        read_checkpoint(sneaky)


def test_crafted_image_branch_checkpoint_is_refused_by_the_predictor(tmp_path: Path) -> None:
    """A run directory someone sends: its image branch's ``best.pt`` is read weights-only."""
    from aims_lib.predict import AIMSPosePredictor, write_manifest

    marker = tmp_path / "pwned"
    image_dir = tmp_path / "image"
    (image_dir / "checkpoints").mkdir(parents=True)
    (image_dir / "config.json").write_text('{"level": "coarse", "arch": "resnet18"}')
    _crafted_torch_file(image_dir / "checkpoints" / "best.pt", marker, {"model": {}})
    (tmp_path / "pose2d").mkdir()
    (tmp_path / "hipc.pt").write_bytes(b"")
    write_manifest(tmp_path / "full", image_branch=image_dir, pose2d=tmp_path / "pose2d", hipc=tmp_path / "hipc.pt")
    with pytest.raises(UnsafePickleError, match=r"best.pt: refuses to load.*no opt-in"):
        AIMSPosePredictor.load(tmp_path / "full")
    assert not marker.exists()


def test_legacy_pose2d_checkpoint_needs_the_named_opt_in_to_start_training(tmp_path: Path) -> None:
    """A checkpoint that needs full unpickling (old mmcv ones hold e.g. an argparse.Namespace) is
    refused before training; with ``trust_checkpoint=True`` its weights start the run, and
    mmengine reads only the tensors-only copy the run saved."""
    import argparse

    from aims_lib.pose_branch import keypoints2d as k2d
    from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator
    from aims_lib.pose_branch.run_checkpoints import latest_checkpoint

    estimator = Pose2DEstimator.load(k2d.CPU_CONFIG)
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": estimator.model.state_dict(), "meta": {"args": argparse.Namespace(lr=0.1)}}, legacy)
    data = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny"
    cfg = k2d.Pose2DTrainConfig(epochs=1, batch_size=4, checkpoint=str(legacy))
    with pytest.raises(pickle.UnpicklingError, match=r"legacy.pth: refused.*argparse.Namespace.*TRUST_POSE2D_CHECKPOINT=1"):
        k2d.train_keypoints_2d(data, tmp_path / "refused", cfg)
    assert not (tmp_path / "refused" / "last_checkpoint").exists()  # nothing trained

    run = tmp_path / "trusted"
    k2d.train_keypoints_2d(data, run, k2d.Pose2DTrainConfig(epochs=1, batch_size=4, checkpoint=str(legacy), trust_checkpoint=True))
    start = torch.load(run / "initial_weights.pth", weights_only=True)["state_dict"]
    for name, value in estimator.model.state_dict().items():
        torch.testing.assert_close(start[name], value, msg=name)
    assert latest_checkpoint(run) is not None


def test_reproduce_trust_flags_name_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    from aims_lib.reproduce import main

    with pytest.raises(SystemExit):
        main(["--trust-smil-model", "--only", "03"])
    assert "--trust-smil-model names no file: give --smil-model too" in capsys.readouterr().err


def test_a_damaged_checkpoint_is_named_as_damaged_not_as_unsafe(tmp_path: Path) -> None:
    from aims_lib.safe_checkpoints import read_checkpoint
    from aims_lib.safe_pickle import load_weights_file

    bad = tmp_path / "truncated.pth"
    bad.write_bytes(b"not a checkpoint")
    for read in (read_checkpoint, load_weights_file):
        with pytest.raises(ValueError, match="truncated.pth: not a readable weights file"):
            read(bad)
