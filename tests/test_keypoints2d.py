"""Training the 2D estimator: config checks, schedule, learning curve, a tiny run, resume, processes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data.format import load_dataset
from aims_lib.pose_branch import keypoints2d as k2d
from aims_lib.pose_branch.estimator import PREDICTIONS_FILE
from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator, estimate_keypoints_2d
from aims_lib.pose_branch.model_config import RUN_CONFIG_FILE
from aims_lib.pose_branch.run_checkpoints import best_checkpoint, latest_checkpoint

K = 17


def test_a_missing_initial_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        k2d.Pose2DTrainConfig(checkpoint=str(tmp_path / "nowhere.pth")).validate()


def test_schedule_rescaled_to_run_length() -> None:
    schedule = [
        dict(type="LinearLR", begin=0, end=500, start_factor=0.001, by_epoch=False),
        dict(type="MultiStepLR", begin=0, end=210, milestones=[170, 200], gamma=0.1, by_epoch=True),
    ]
    short = k2d.rescale_schedule(schedule, 210, 21, total_iters=40)
    assert short[0]["end"] == 4 and short[1]["milestones"] == [17, 20] and short[1]["end"] == 21
    assert k2d.rescale_schedule(schedule, 210, 1, total_iters=3)[0]["end"] == 2  # LinearLR needs 2
    assert k2d.rescale_schedule(schedule, 210, 210, total_iters=10**5) == schedule


TINY = k2d.Pose2DTrainConfig(epochs=2, batch_size=4, predict_batch_size=8)
TINY_DATA = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """Two epochs on the fixture, interrupted right after epoch 1 is saved, then resumed."""
    from mmengine.hooks import CheckpointHook

    run = tmp_path_factory.mktemp("pose2d") / "run"
    save = CheckpointHook.after_train_epoch

    def save_then_interrupt(self: CheckpointHook, runner: object) -> None:
        save(self, runner)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(CheckpointHook, "after_train_epoch", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            k2d.train_keypoints_2d(TINY_DATA, run, TINY)
    interrupted_at = latest_checkpoint(run).name
    return run, k2d.train_keypoints_2d(TINY_DATA, run, TINY), interrupted_at


def test_tiny_training_writes_predictions_and_metrics(tiny_run: tuple[Path, dict, str], aims_tiny: Path) -> None:
    run, metrics, _ = tiny_run
    ds = load_dataset(aims_tiny)
    pred = np.load(run / PREDICTIONS_FILE)
    assert sorted(pred["image_id"].tolist()) == sorted(s.image_id for s in ds.samples)
    assert pred["keypoints"].shape == (len(ds), K, 2) and pred["scores"].shape == (len(ds), K)
    assert np.isfinite(pred["keypoints"]).all() and np.isfinite(pred["scores"]).all()
    assert set(metrics["test"]) >= {"AP", "AP50", "AR", "PCK@0.05"} and metrics["test"]["n"] == 2
    assert {"coco/AP", "PCK", "loss"} <= set(metrics["history"][-1]) and metrics["checkpoint"].startswith("best_PCK_epoch_")
    assert json.loads((run / k2d.METRICS_FILE).read_text())["test"] == metrics["test"]


def test_resume_after_interruption(tiny_run: tuple[Path, dict, str]) -> None:
    run, metrics, interrupted_at = tiny_run
    assert interrupted_at == "epoch_1.pth" and latest_checkpoint(run).name == "epoch_2.pth"
    assert metrics["resumed"] and [h["epoch"] for h in metrics["history"]] == [1, 2]
    with pytest.raises(ValueError, match="other settings.*seed"):
        k2d.train_keypoints_2d(TINY_DATA, run, k2d.Pose2DTrainConfig(epochs=2, batch_size=4, seed=1))


def test_checkpoint_loads_into_estimator_with_same_predictions(tiny_run: tuple[Path, dict, str], aims_tiny: Path) -> None:
    run, _, _ = tiny_run
    samples = load_dataset(aims_tiny).samples
    pred = np.load(run / PREDICTIONS_FILE)
    est = Pose2DEstimator.load(run / RUN_CONFIG_FILE, checkpoint=best_checkpoint(run))
    keypoints, scores = estimate_keypoints_2d([s.path for s in samples], [s.bbox for s in samples], est)
    order = {int(i): n for n, i in enumerate(pred["image_id"])}
    rows = [order[s.image_id] for s in samples]
    np.testing.assert_allclose(keypoints, pred["keypoints"][rows], atol=1e-4)
    np.testing.assert_allclose(scores, pred["scores"][rows], atol=1e-5)
    with pytest.raises(ValueError, match="does not fit the model"):
        Pose2DEstimator.load(k2d.PAPER_CONFIG, checkpoint=best_checkpoint(run))


def test_two_processes_train_the_2d_model_with_mmengines_launcher(tmp_path: Path, aims_tiny: Path) -> None:
    """GPUS=N for the 2D estimator: torchrun, mmengine's pytorch launcher (gloo here), each process
    a share of the batch; the notebook's process predicts and evaluates afterwards."""
    run = tmp_path / "run"
    metrics = k2d.train_keypoints_2d(TINY_DATA, run, dataclasses.replace(TINY, epochs=1, processes=2))
    config = json.loads((run / RUN_CONFIG_FILE).read_text())
    assert config["train_dataloader"]["batch_size"] == 2  # the global 4 over 2 processes
    assert (run / "torchrun.log").is_file() and latest_checkpoint(run).name == "epoch_1.pth"
    assert len((run / k2d.HISTORY_FILE).read_text().splitlines()) == 2  # process 0's training and validation records
    assert [h["epoch"] for h in metrics["history"]] == [1] and {"loss", "PCK"} <= set(metrics["history"][0])
    pred = np.load(run / PREDICTIONS_FILE)
    assert pred["keypoints"].shape == (len(load_dataset(aims_tiny)), K, 2) and np.isfinite(pred["keypoints"]).all()
    with pytest.raises(ValueError, match="batch_size 4 does not split over 3 processes"):
        k2d.train_keypoints_2d(TINY_DATA, tmp_path / "odd", dataclasses.replace(TINY, epochs=1, processes=3))
