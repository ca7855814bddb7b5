"""Folding eval BatchNorm into convolutions: the hand-computed case, what is not folded, the
check that catches a wrong pair, and the networks the card runs."""

import pytest
import torch
from torch import nn

from aims_lib.batchnorm_folding import FoldedCopy, fold_batchnorm
from aims_lib.image_branch.backbones import StagedBackbone, get_backbone


def _bn(channels: int, weight: float, bias: float, mean: float, var: float) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels, eps=0.0)
    with torch.no_grad():
        bn.weight.fill_(weight), bn.bias.fill_(bias), bn.running_mean.fill_(mean), bn.running_var.fill_(var)
    return bn


def test_folded_weights_match_the_hand_computed_case():
    """conv y = 2x + 1, then BN with gamma 3, beta 0.5, mean 1, var 4: s = 3 / 2, so
    W' = 3 and b' = 1.5 * (1 - 1) + 0.5 = 0.5."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1), _bn(1, 3.0, 0.5, 1.0, 4.0), nn.ReLU())
    with torch.no_grad():
        model[0].weight.fill_(2.0), model[0].bias.fill_(1.0)
    folded = fold_batchnorm(model, torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[2], nn.ReLU)
    assert folded[0].weight.item() == pytest.approx(3.0) and folded[0].bias.item() == pytest.approx(0.5)
    assert isinstance(model[1], nn.BatchNorm2d) and model[0].weight.item() == 2.0  # the original is untouched
    x = torch.linspace(-2, 2, 16).reshape(1, 1, 4, 4)
    torch.testing.assert_close(folded(x), torch.relu(3 * x + 0.5))


def test_a_conv_without_bias_and_a_depthwise_conv_fold_per_channel():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), _bn(4, 1.5, -0.2, 0.3, 2.0),
                          nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), _bn(4, 0.7, 0.1, -0.4, 0.5))
    model[1].weight.data = torch.tensor([1.0, 2.0, -1.0, 0.5])  # a different scale per channel
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(model, x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model.eval()(x), rtol=1e-5, atol=1e-5)


class _SumThenNorm(nn.Module):
    """A BatchNorm after a sum of two branches: registered after the second conv, but not its."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 2, 1)
        self.b = nn.Conv2d(2, 2, 1)
        self.norm = _bn(2, 2.0, 1.0, 0.5, 3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.a(x) + self.b(x))


def test_a_wrong_pair_is_caught_by_the_check():
    with pytest.raises(ValueError, match="does not follow the convolution"):
        fold_batchnorm(_SumThenNorm(), torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0)))


def test_a_norm_after_a_layer_with_weights_is_left_alone():
    """conv, then a block with weights, then a BN: the BN normalises the block's output."""
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sequential(nn.Conv2d(2, 2, 1)), _bn(2, 2.0, 1.0, 0.5, 3.0))
    folded = fold_batchnorm(model, torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0)))
    assert isinstance(folded[2], nn.BatchNorm2d)


def test_the_card_backbone_folds_to_the_same_features():
    """EfficientNet-Lite0 (timm's BatchNormAct2d: the activation stays), every BatchNorm folded,
    stages looked up after the replacement; features equal to rounding."""
    torch.manual_seed(0)
    net = StagedBackbone(get_backbone("efficientnet_lite0"))
    for m in net.modules():  # running statistics other than 0 / 1, so that folding changes weights
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 96, 96)
    folded = fold_batchnorm(net, x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    with torch.no_grad():
        want = net.eval().forward_stages(x, 0, 4)
        torch.testing.assert_close(folded.forward_stages(x, 0, 4), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)


def test_the_check_leaves_each_module_in_its_own_mode():
    """A frozen (eval) block inside a network in training stays in eval mode after the check."""
    model = nn.Sequential(nn.Sequential(nn.Conv2d(2, 2, 1), _bn(2, 2.0, 1.0, 0.5, 3.0)), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    model.train()
    model[0].eval()
    fold_batchnorm(model, torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(0)))
    assert model.training and not model[0].training and not model[0][1].training and model[2].training


def test_a_folded_copy_is_kept_until_the_weights_change():
    model = nn.Sequential(nn.Conv2d(1, 1, 1), _bn(1, 3.0, 0.5, 1.0, 4.0))
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    cache = FoldedCopy()
    first = cache.of(model, x)
    assert not any(p.requires_grad for p in first.parameters())  # inference only, never traced
    assert cache.of(model, x) is first  # the same weights: the same copy
    with torch.no_grad():
        model[0].weight.mul_(2.0)  # e.g. an optimiser step or a loaded checkpoint
    second = cache.of(model, x)
    assert second is not first
    with torch.no_grad():
        torch.testing.assert_close(second(x), model.eval()(x))
    model.load_state_dict(model.state_dict())  # written in place, even with equal values
    assert cache.of(model, x) is not second

