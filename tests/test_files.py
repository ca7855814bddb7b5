"""The files module: atomic writes, JSON that every reader accepts, torch and npz round trips."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from aims_lib import files


def test_atomic_write_gives_plain_permissions_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = files.atomic_write_bytes(tmp_path / "sub" / "x.json", b"{}")
    assert path == tmp_path / "sub" / "x.json" and path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~files._UMASK
    assert not list(path.parent.glob(".x.json.*"))


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = files.write_json(tmp_path / "r.json", {"a": 1})
    before = target.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        files.write_json(target, {"a": 2})
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_json_ready_turns_numpy_into_numbers_and_non_finite_into_null() -> None:
    value = {"a": np.float32(1.5), "b": np.int64(3), "c": [math.inf, np.nan], "d": np.array([[1, 2]]), 4: (True, None)}
    assert files.json_ready(value) == {"a": 1.5, "b": 3, "c": [None, None], "d": [[1, 2]], 4: [True, None]}
    assert json.loads(files.json_bytes(value)) == {"a": 1.5, "b": 3, "c": [None, None], "d": [[1, 2]], "4": [True, None]}


def test_json_bytes_compact_and_indented() -> None:
    assert files.json_bytes({"a": [1, 2]}, indent=None, compact=True) == b'{"a":[1,2]}'
    assert files.json_bytes({"a": 1}) == b'{\n  "a": 1\n}\n'
    with pytest.raises(TypeError):
        files.json_bytes({"path": Path("x")})  # not data: refused, not stringified


def test_torch_and_npz_round_trip(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 4, "history": [{"acc": 0.5}]}
    back = torch.load(files.write_torch(tmp_path / "c.pt", state), weights_only=True)
    assert torch.equal(back["w"], state["w"]) and back["epoch"] == 4 and back["history"] == [{"acc": 0.5}]
    with np.load(files.write_npz(tmp_path / "o.npz", ids=np.array([3, 1]), x=np.eye(2)), allow_pickle=False) as z:
        assert z["ids"].tolist() == [3, 1] and np.array_equal(z["x"], np.eye(2))


def test_the_repository_root_holds_the_package() -> None:
    assert (files.REPO / "aims_lib" / "files.py").is_file() and (files.REPO / "notebooks").is_dir()
