"""The projected pyramid neck is the concatenate-then-project neck, computed more cheaply."""

import pytest
import torch
import torch.nn.functional as F

from aims_lib.pose_branch.mmcv_shim import import_mmpose

import_mmpose()
from aims_lib.pose_branch.mmpose_neck import ProjectedFeaturePyramid  # noqa: E402


def test_projecting_before_upsampling_equals_projecting_the_concatenation():
    torch.manual_seed(0)
    channels = (3, 5, 7)
    maps = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate(channels)]
    neck = ProjectedFeaturePyramid(channels, 4)
    for conv in neck.projections:  # the default init is tiny; any weights must agree
        torch.nn.init.normal_(conv.weight)
    torch.nn.init.normal_(neck.projections[0].bias)
    # the reference: mmpose's way, every map upsampled to 16 x 16, concatenated, one 1x1 convolution
    weight = torch.cat([conv.weight for conv in neck.projections], dim=1)
    stacked = torch.cat([F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False) for x in maps], dim=1)
    expected = F.conv2d(stacked, weight, neck.projections[0].bias)
    torch.testing.assert_close(neck.project(maps), expected, rtol=1e-5, atol=1e-5)
    (out,) = neck(maps)
    assert out.shape == (2, 4, 16, 16) and (out >= 0).all()  # BatchNorm and ReLU follow


def test_the_neck_refuses_a_wrong_number_of_maps_and_bad_channels():
    neck = ProjectedFeaturePyramid((3, 5), 4)
    with pytest.raises(ValueError, match=r"expected 2 feature maps \(channels \(3, 5\)\), got 1"):
        neck.project([torch.zeros(1, 3, 4, 4)])
    with pytest.raises(ValueError, match="positive channel counts"):
        ProjectedFeaturePyramid((3, 0), 4)
