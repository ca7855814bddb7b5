"""The 2D estimator's CPU training settings: channels-last on every CPU, bfloat16 only where native."""

from types import SimpleNamespace

import pytest
import torch

from aims_lib.pose_branch.mmcv_shim import import_mmpose

import_mmpose()
from aims_lib.pose_branch import cpu_amp  # noqa: E402


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.head = SimpleNamespace(final_layer=torch.nn.Conv2d(4, 2, 1))


@pytest.mark.parametrize("native", [True, False])
def test_the_hook_makes_the_model_channels_last_on_any_cpu(monkeypatch, native):
    monkeypatch.setattr(cpu_amp, "computes_bf16", lambda: native)
    net = _Net()
    cpu_amp.CpuBf16Hook().before_run(SimpleNamespace(model=net))
    assert net.conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net.head.final_layer(torch.zeros(1, 4, 3, 3))
    assert out.dtype == torch.float32  # the heatmaps reach mmpose's NumPy accuracy as float32


@pytest.mark.parametrize(("native", "dtype"), [(True, torch.bfloat16), (False, torch.float32)])
def test_autocast_only_where_the_cpu_computes_bfloat16(monkeypatch, native, dtype):
    monkeypatch.setattr(cpu_amp, "computes_bf16", lambda: native)
    net = torch.nn.Linear(4, 4)
    wrapper = cpu_amp.CpuBf16OptimWrapper(optimizer=torch.optim.SGD(net.parameters(), lr=0.1))
    with wrapper.optim_context(net):
        assert net(torch.zeros(2, 4)).dtype == dtype
