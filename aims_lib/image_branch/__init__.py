"""Image branch (paper Sec. 4.1): ResNet + bottleneck + classifier, trained with CE + LMMD."""

from aims_lib.image_branch.model import ARCHS, BOTTLENECK_DIM, ImageBranch
from aims_lib.image_branch.trainer import ImageTrainConfig, backbone_weights, profile_config, run_name, train_image_branch

__all__ = ["ARCHS", "BOTTLENECK_DIM", "ImageBranch", "ImageTrainConfig", "backbone_weights", "profile_config", "run_name", "train_image_branch"]
