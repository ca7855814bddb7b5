"""The backbone registry: packaged ImageNet weights really load, foreign files fail clearly."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aims_lib.image_branch.backbones import BACKBONES, StagedBackbone, get_backbone, imagenet_classifier


def _imagenet_top(net, normalization, image: np.ndarray, k: int = 3) -> list[int]:
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255.0
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (x - torch.tensor(normalization.mean)[:, None, None]) / torch.tensor(normalization.std)[:, None, None]
    with torch.no_grad():
        return net(x).softmax(1).topk(k).indices[0].tolist()


def test_packaged_lite0_weights_recognise_imagenet_photographs():
    """Proof that the weights load, not only that shapes match: scikit-image's cat photograph
    lands in ImageNet's cat classes (281-285) and its coffee cup on espresso (967)."""
    import skimage.data

    net, norm = imagenet_classifier("efficientnet_lite0")
    assert _imagenet_top(net, norm, skimage.data.chelsea())[0] in range(281, 286)
    assert _imagenet_top(net, norm, skimage.data.coffee())[0] == 967


def test_random_lite0_does_not_recognise_them():
    """The same check fails without the weights: the test above can fail."""
    import skimage.data

    torch.manual_seed(0)
    net = get_backbone("efficientnet_lite0").build().eval()
    norm = get_backbone("efficientnet_lite0").normalization
    assert _imagenet_top(net, norm, skimage.data.coffee())[0] != 967


def test_weights_of_another_layout_name_the_file_and_keys(tmp_path):
    state = torch.load(get_backbone("efficientnet_lite0").packaged_weights(), weights_only=True)
    keys = list(state)
    bad = dict(state)
    bad[keys[0]] = torch.zeros(16, 3, 3, 3)  # the stem convolution of another width
    path = tmp_path / "other.pth"
    torch.save(bad, path)
    with pytest.raises(ValueError, match=rf"other.pth: not a weights file of this layout.*{keys[0]} \(16, 3, 3, 3\)"):
        imagenet_classifier("efficientnet_lite0", path)
    torch.save(dict(list(state.items())[:-2]), path)  # a truncated file
    with pytest.raises(ValueError, match="other.pth: not a weights file of this layout .*the counts differ"):
        imagenet_classifier("efficientnet_lite0", path)


def test_nothing_is_downloaded(monkeypatch):
    """Building every backbone and loading the packaged weights opens no network connection."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name, spec in BACKBONES.items():
        weights = spec.packaged_weights() if spec.packaged_weights else None
        backbone = StagedBackbone(spec, weights)
        assert backbone.feature_dim == {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "efficientnet_lite0": 1280}[name]


def test_normalisation_follows_the_backbone():
    assert get_backbone("efficientnet_lite0").normalization.mean == (127 / 255,) * 3
    assert get_backbone("resnet50").normalization.mean == (0.485, 0.456, 0.406)
