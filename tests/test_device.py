"""The one device chooser (:func:`aims_lib.machine.resolve_device`) and the commands and
notebooks that check their device through it before any work (issue #24, item 7). The machine's
GPUs are monkeypatched, so these tests read the same with or without one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aims_lib import reproduce
from aims_lib.machine import resolve_device
from aims_lib.workspace import notebook_context


def _gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Make torch see ``count`` CUDA GPUs."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(("count", "device", "resolved"), [
    (0, "auto", "cpu"), (0, "cpu", "cpu"), (1, "auto", "cuda"), (1, "cpu", "cpu"),
    (1, "cuda", "cuda"), (2, "cuda:1", "cuda:1"),
])
def test_valid_devices_resolve(monkeypatch: pytest.MonkeyPatch, count: int, device: str, resolved: str) -> None:
    _gpus(monkeypatch, count)
    assert resolve_device(device) == resolved


@pytest.mark.parametrize(("count", "device", "message"), [
    (0, "cuda", "device 'cuda': torch sees no CUDA GPU on this machine (torch.cuda.is_available() is False); use cpu or auto"),
    (0, "cuda:0", "device 'cuda:0': torch sees no CUDA GPU on this machine"),
    (2, "cuda:2", "device 'cuda:2': torch sees 2 CUDA GPU(s), cuda:0 to cuda:1"),
    (1, "gpu", "unknown device 'gpu': valid are auto, cpu, cuda, cuda:N (N: a GPU index)"),
    (1, "CUDA", "unknown device 'CUDA': valid are"),
    (1, "cuda:x", "unknown device 'cuda:x': valid are"),
    (1, "", "unknown device '': valid are"),
])
def test_invalid_or_missing_devices_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, count: int, device: str, message: str
) -> None:
    _gpus(monkeypatch, count)
    with pytest.raises(ValueError) as exc:
        resolve_device(device)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)


def test_reproduce_refuses_a_missing_gpu_before_notebook_01(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a notebook ran although --device was refused")

    _gpus(monkeypatch, 0)
    monkeypatch.setattr(reproduce, "run_notebooks", never)
    with pytest.raises(SystemExit) as exc:
        reproduce.main(["--profile", "smoke", "--device", "cuda", "--reports", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["python -m aims_lib.reproduce: error: --device: device 'cuda': torch sees no CUDA GPU "
                                "on this machine (torch.cuda.is_available() is False); use cpu or auto"]
    assert not any(tmp_path.iterdir())  # no reports folder begun


def test_a_notebook_context_checks_its_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every notebook gets its device from notebook_context: a missing GPU stops its first cell."""
    _gpus(monkeypatch, 0)
    with pytest.raises(ValueError, match="device 'cuda': torch sees no CUDA GPU"):
        notebook_context("smoke", 0, "cuda", reports_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    assert notebook_context("smoke", 0, "auto", reports_dir=tmp_path / "r").device == "cpu"


def test_reproduce_passes_gpus_and_the_dry_run_to_the_notebooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = {}

    def record(parameters: dict, out_dir: Path, selection: object = None) -> dict:
        seen.update(parameters=parameters, out_dir=out_dir)
        raise reproduce.NotebookFailed("stopped by the test")

    monkeypatch.setattr(reproduce, "reproduce", record)
    assert reproduce.main(["--profile", "paper", "--dry-run", "--gpus", "2", "--device", "cpu",
                           "--reports", str(tmp_path)]) == 1
    assert seen["parameters"]["gpus"] == 2 and seen["parameters"]["dry_run"] is True
    assert seen["parameters"]["profile"] == "paper" and seen["out_dir"] == tmp_path / "paper-dry-run" / "seed0"
    reproduce.main(["--profile", "smoke", "--device", "cpu", "--reports", str(tmp_path)])
    assert "gpus" not in seen["parameters"] and "dry_run" not in seen["parameters"]  # the notebooks' defaults
    with pytest.raises(SystemExit):
        reproduce.main(["--profile", "smoke", "--gpus", "0", "--reports", str(tmp_path)])
    assert "--gpus must be >= 1, got 0" in capsys.readouterr().err
