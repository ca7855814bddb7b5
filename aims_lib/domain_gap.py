"""How far apart are the two appearance domains? Train on one, test on both.

A ResNet-18 (the image branch's network, from scratch) learns coarse labels from
synthetic-domain crops only; its accuracy on held-out synthetic images versus real-domain images
measures the domain gap that domain adaptation has to close. A four-layer CNN stayed at chance on
the quick data, so the yardstick uses the branch's own backbone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from aims_lib.data.format import AimsDataset, Sample
from aims_lib.data.torch_datasets import crop_to_box, image_transform, read_image
from aims_lib.image_branch.model import ImageBranch


@dataclass(frozen=True)
class DomainGap:
    synthetic_accuracy: float  # % on held-out synthetic images
    real_accuracy: float  # % on real-domain images
    chance: float  # % of the majority class among the real-domain images
    n_train: int
    n_synthetic_test: int
    n_real_test: int

    @property
    def gap(self) -> float:
        return self.synthetic_accuracy - self.real_accuracy

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "gap": self.gap}


def _tensors(samples: list[Sample], image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    transform = image_transform(image_size, train=False)
    images = torch.stack([transform(crop_to_box(read_image(s), s.bbox)) for s in samples])
    return images, torch.tensor([s.coarse_id for s in samples])


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xb)[0].argmax(1) for xb in x.split(256)])
    return float((pred == y).float().mean() * 100)


def measure_domain_gap(
    dataset: AimsDataset, image_size: int = 64, epochs: int = 15, seed: int = 0, holdout: float = 0.2
) -> DomainGap:
    """Train a ResNet-18 on synthetic crops (coarse labels), test on both domains."""
    synthetic = dataset.select(domain="synthetic")
    real = dataset.select(domain="real")
    if len(synthetic) < 10 or not real:
        raise ValueError(
            f"{dataset.path}: need at least 10 synthetic and 1 real image, got {len(synthetic)} and {len(real)}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(synthetic))
    n_test = max(1, int(round(holdout * len(synthetic))))
    train = [synthetic[i] for i in order[n_test:]]
    test_syn = [synthetic[i] for i in order[:n_test]]
    x_tr, y_tr = _tensors(train, image_size)
    x_ts, y_ts = _tensors(test_syn, image_size)
    x_re, y_re = _tensors(real, image_size)

    torch.manual_seed(seed)
    model = ImageBranch("resnet18", num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, total_steps=epochs * (-(-len(train) // 64)))
    gen = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc="domain-gap ResNet-18", unit="epoch", leave=False):
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        for idx in perm.split(64):
            xb = x_tr[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5  # labels are left/right symmetric
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            loss = nn.functional.cross_entropy(model(xb)[0], y_tr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    chance = float(torch.bincount(y_re, minlength=4).max() / len(y_re) * 100)
    return DomainGap(
        synthetic_accuracy=_accuracy(model, x_ts, y_ts),
        real_accuracy=_accuracy(model, x_re, y_re),
        chance=chance,
        n_train=len(train),
        n_synthetic_test=len(test_syn),
        n_real_test=len(real),
    )
