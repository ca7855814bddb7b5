"""The CUDA settings that make a GPU run repeat itself (set here on any machine; the CPU never needs them)."""

from __future__ import annotations

import os

import torch

from aims_lib.determinism import CUBLAS_WORKSPACE, repeatable_cuda


def test_repeatable_cuda_fixes_cudnn_cublas_and_tf32(monkeypatch) -> None:
    backends = torch.backends
    for module, name in ((backends.cudnn, "benchmark"), (backends.cudnn, "deterministic"),
                         (backends.cuda.matmul, "allow_tf32"), (backends.cudnn, "allow_tf32")):
        monkeypatch.setattr(module, name, getattr(module, name))  # restored after the test
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    deterministic, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    backends.cudnn.benchmark, backends.cuda.matmul.allow_tf32 = True, True
    try:
        record = repeatable_cuda()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE == record["cublas_workspace_config"]
        assert backends.cudnn.deterministic and not backends.cudnn.benchmark
        assert not backends.cuda.matmul.allow_tf32 and not backends.cudnn.allow_tf32
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # a user's setting is kept
        assert repeatable_cuda()["cublas_workspace_config"] == ":16:8"
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def test_a_cuda_notebook_gets_the_repeatable_settings(tmp_path, monkeypatch, capsys) -> None:
    from aims_lib import determinism, workspace

    calls = []
    monkeypatch.setattr(workspace, "resolve_device", lambda device: "cuda:0")
    monkeypatch.setattr(determinism, "repeatable_cuda", lambda: calls.append(1) or {"cudnn_deterministic": True})
    ctx = workspace.notebook_context("smoke", 0, "cuda", reports_dir=tmp_path / "r")
    assert ctx.device == "cuda:0" and calls == [1]
    assert "cuda:0: repeatable CUDA settings {'cudnn_deterministic': True}" in capsys.readouterr().out
