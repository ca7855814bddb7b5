"""Mixed precision: the dtype each device and setting gets, the scaled step, and float32 on the CPU unchanged."""

from __future__ import annotations

import pytest
import torch

from aims_lib.mixed_precision import MixedPrecision, autocast_dtype


def test_dtype_by_device_and_setting(monkeypatch) -> None:
    assert autocast_dtype("cpu") is None and autocast_dtype("cpu", "float32") is None
    assert autocast_dtype("cpu", "bfloat16") is torch.bfloat16 and autocast_dtype("cuda", "float16") is torch.float16
    for supported, dtype in ((True, torch.bfloat16), (False, torch.float16)):  # Ampere and later / older GPUs
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        assert autocast_dtype("cuda") is dtype and autocast_dtype("cuda:1") is dtype
    assert autocast_dtype("cuda", "float32") is None
    with pytest.raises(ValueError, match="precision must be one of auto, float32, bfloat16, float16, got 'half'"):
        autocast_dtype("cpu", "half")


def _model_and_data() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.nn.Linear(8, 3), torch.randn(16, 8), torch.randint(0, 3, (16,))


def test_float32_on_the_cpu_is_a_plain_step() -> None:
    model, x, y = _model_and_data()
    twin = torch.nn.Linear(8, 3)
    twin.load_state_dict(model.state_dict())
    amp = MixedPrecision("cpu")
    assert amp.name == "float32" and not amp.scaler.is_enabled() and amp.state_dict() == {}
    opt, twin_opt = torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(twin.parameters(), lr=0.1)
    with amp.autocast():
        out = model(x)
    (logits,) = amp.outputs(out)
    amp.step(torch.nn.functional.cross_entropy(logits, y), opt)
    twin_opt.zero_grad()
    torch.nn.functional.cross_entropy(twin(x), y).backward()
    twin_opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)  # bit for bit: the CPU profiles' numbers do not move


def test_float16_scales_the_loss_and_skips_a_step_whose_gradients_overflow() -> None:
    model, x, y = _model_and_data()
    amp = MixedPrecision("cpu", "float16")
    assert amp.name == "float16 autocast, gradient scaler" and amp.scaler.is_enabled()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with amp.autocast():
        out = model(x)
    assert out.dtype is torch.float16 and amp.outputs(out)[0].dtype is torch.float32
    before = [p.detach().clone() for p in model.parameters()]
    scale = amp.scaler.get_scale()
    amp.step(amp.outputs(out)[0].sum() * float("inf"), opt)  # non-finite gradients: no step, smaller scale
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert amp.scaler.get_scale() == scale * 0.5
    with amp.autocast():
        out = model(x)
    amp.step(torch.nn.functional.cross_entropy(amp.outputs(out)[0], y), opt)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    again = MixedPrecision("cpu", "float16")  # a resumed run continues with the scale it had
    again.load_state_dict(amp.state_dict())
    assert again.scaler.get_scale() == amp.scaler.get_scale()
