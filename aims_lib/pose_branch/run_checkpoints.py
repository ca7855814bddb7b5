"""Which checkpoint of a 2D keypoint run directory to load.

mmengine's Runner keeps the best checkpoint by validation (``best_*.pth``) and records the path
of its last one in ``last_checkpoint``: the estimator loads the best
(:mod:`aims_lib.pose_branch.mmpose_estimator`), an interrupted run resumes from the last
(:mod:`aims_lib.pose_branch.keypoints2d`).
"""

from __future__ import annotations

from pathlib import Path


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint by validation (mmengine keeps one), else its last one."""
    best = sorted(run_dir.glob("best_*.pth"))
    if best:
        return best[-1]
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint: train it first")
    return latest


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint an interrupted run resumes from (mmengine's ``last_checkpoint`` record)."""
    record = run_dir / "last_checkpoint"
    if not record.is_file():
        return None
    path = Path(record.read_text().strip())
    return path if path.is_file() else None
