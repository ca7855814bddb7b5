"""The full model end to end (paper Fig. 2): :class:`AIMSPosePredictor` turns images into coarse
and fine AIMS labels, calibrated answers and keypoints (:mod:`aims_lib.predict.predictor`), and
``python -m aims_lib.predict`` does it from the shell (:mod:`aims_lib.predict.cli`)."""

from aims_lib.predict.predictor import (
    CALIBRATION, FORMAT, IMAGE_SUFFIXES, MANIFEST, OVERLAY_SCORE, TRUSTABLE, AIMSPosePredictor, Predictions, write_manifest,
)

__all__ = ["CALIBRATION", "FORMAT", "IMAGE_SUFFIXES", "MANIFEST", "OVERLAY_SCORE", "TRUSTABLE", "AIMSPosePredictor",
           "Predictions", "write_manifest"]
