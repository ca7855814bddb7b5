r"""HIPC, the hierarchical infant pose classifier (paper Sec. 4.3; Zhou et al.'s design).

Input: normalised COCO-17 3D keypoints (B, 17, 3) and, for the full model, the image branch's
coarse probabilities (B, 4). A PointNet-style T-Net predicts a 3x3 matrix that aligns the
skeleton; per-joint 1x1 convolutions lift every joint to 1024 channels; a max over joints and an
MLP 1024-512-256 (BatchNorm, PReLU, dropout 0.3) give fine logits :math:`z_f`.

Hierarchy. The reference multiplies the fine logits by the coarse score of their parent, which is
not monotone (a negative logit grows when its parent's score shrinks). We use the factorisation
it aims at instead:

.. math::

    \log p(f) = \log p(c(f)) + \log \operatorname{softmax}_{f' \in c(f)} z_{f'},

so a fine class's probability is its parent's probability times its share within the parent,
and always follows the parent. Without coarse input (the "pose branch" classifier),
:math:`p(f) = \operatorname{softmax}(z)_f`; its coarse prediction is the parent of its fine one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aims_lib import taxonomy

_GROUPS = torch.tensor(taxonomy.FINE_TO_COARSE_ID)


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.PReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def _point_features(channels: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(channels, channels[1:]):
        layers += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.PReLU()]
    return nn.Sequential(*layers)


class TNet(nn.Module):
    """Predicts a 3x3 alignment of the skeleton, initialised at the identity."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _point_features([3, 64, 128, 256])
        self.head = nn.Sequential(_mlp([256, 128, 64], 0.0), nn.Linear(64, 9))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, points: Tensor) -> Tensor:  # (B, 3, J) -> (B, 3, 3)
        x = self.features(points).amax(dim=2)
        return self.head(x).view(-1, 3, 3) + torch.eye(3, device=points.device, dtype=points.dtype)


class HIPC(nn.Module):
    """``forward(keypoints_3d, coarse_probs=None) -> log p(fine)`` (B, 12)."""

    def __init__(self, hierarchical: bool = True, dropout: float = 0.3) -> None:
        super().__init__()
        self.hierarchical = hierarchical
        self.tnet = TNet()
        self.features = _point_features([3, 64, 128, 1024])
        self.classifier = nn.Sequential(_mlp([1024, 512, 256], dropout), nn.Linear(256, taxonomy.NUM_FINE))
        self.register_buffer("groups", _GROUPS.clone(), persistent=False)

    def forward(self, keypoints_3d: Tensor, coarse_probs: Tensor | None = None) -> Tensor:
        if keypoints_3d.ndim != 3 or keypoints_3d.shape[1:] != (taxonomy.NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints_3d must be (B, 17, 3), got {tuple(keypoints_3d.shape)}")
        points = keypoints_3d.transpose(1, 2)  # (B, 3, J)
        aligned = torch.bmm(self.tnet(points), points)
        logits = self.classifier(self.features(aligned).amax(dim=2))
        if not self.hierarchical:
            return torch.log_softmax(logits, dim=1)
        if coarse_probs is None:
            raise ValueError("the hierarchical HIPC needs coarse_probs (B, 4) from the image branch")
        return hierarchical_log_probs(logits, coarse_probs, self.groups)


def hierarchical_log_probs(fine_logits: Tensor, coarse_probs: Tensor, groups: Tensor) -> Tensor:
    """``log p(parent) + log softmax within the parent`` for every fine class (module docstring)."""
    num_coarse = coarse_probs.shape[1]
    member = nn.functional.one_hot(groups, num_coarse).to(fine_logits.dtype)  # (F, C)
    # log-sum-exp of the fine logits within each coarse group, gathered back per fine class
    shifted = fine_logits - fine_logits.amax(dim=1, keepdim=True)
    group_lse = torch.log(torch.exp(shifted) @ member)  # (B, C)
    within = shifted - group_lse[:, groups]
    return torch.log(coarse_probs.clamp_min(1e-12))[:, groups] + within
