"""Image branch (paper Sec. 4.1): a registry backbone + bottleneck + classifier, trained with CE + a domain-adaptation loss (LMMD in the paper)."""

from aims_lib.image_branch.backbones import BACKBONES, BackboneSpec, get_backbone, imagenet_classifier
from aims_lib.image_branch.model import ARCHS, BOTTLENECK_DIM, ImageBranch
from aims_lib.image_branch.run_names import run_key, run_name
from aims_lib.image_branch.trainer import (
    BackboneStart, ImageTrainConfig, backbone_start, predictions_of_run, profile_config, train_image_branch,
)

__all__ = [
    "ARCHS", "BACKBONES", "BOTTLENECK_DIM", "BackboneSpec", "BackboneStart", "ImageBranch", "ImageTrainConfig",
    "backbone_start", "get_backbone", "imagenet_classifier", "predictions_of_run", "profile_config", "run_key", "run_name",
    "train_image_branch",
]
