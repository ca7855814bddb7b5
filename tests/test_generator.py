"""The generator end to end on a tiny run: valid data, determinism, resume, clear errors."""

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aims_lib.camera import project
from aims_lib.data import load_dataset
from aims_lib.synth import generator as gen
from aims_lib.synth.generator import GeneratorConfig, generate

CONFIG = GeneratorConfig(n_synthetic=12, n_real=12, image_size=64, seed=5, workers=1)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "a"
    generate(CONFIG, out)
    return out


def test_tiny_run_is_a_valid_dataset(tiny_run):
    ds = load_dataset(tiny_run)
    assert len(ds) == 24 and ds.info["source"] == "embedded-generator"
    assert "rendering proxy" in ds.info["description"]
    assert {s.domain for s in ds.samples} == {"synthetic", "real"}
    assert {s.split for s in ds.select(domain="real")} == {"train", "val", "test"}
    raw = {a["image_id"]: a for a in ds.raw["annotations"]}
    for s in ds.samples:
        world = np.asarray(raw[s.image_id]["keypoints_3d_world"])
        uv = project(world, s.camera["K"], s.camera["R"], s.camera["T"])
        labelled = s.visibility > 0
        assert labelled.sum() >= gen.MIN_KEYPOINTS_IN_IMAGE
        np.testing.assert_allclose(s.keypoints_2d[labelled], uv[labelled], atol=0.01)  # x2d = K[R|T]X
        assert s.bbox[2] > 2 and s.bbox[3] > 2


def test_same_seed_gives_identical_files(tiny_run, tmp_path):
    generate(CONFIG, tmp_path / "b")
    assert _hashes(tiny_run) == _hashes(tmp_path / "b")


def test_interrupted_run_resumes_without_redoing_images(tiny_run, tmp_path, monkeypatch):
    real_make = gen._ChunkMaker.make
    made = []

    def make_then_crash(self, out_dir, seed, chunk_index, samples):
        if chunk_index == 1:
            raise KeyboardInterrupt("simulated interruption")
        made.append(chunk_index)
        return real_make(self, out_dir, seed, chunk_index, samples)

    monkeypatch.setattr(gen._ChunkMaker, "make", make_then_crash)
    with pytest.raises(KeyboardInterrupt):
        generate(CONFIG, tmp_path / "c")
    assert made == [0] and not (tmp_path / "c" / "annotations.json").exists()
    monkeypatch.setattr(gen._ChunkMaker, "make", real_make)
    summary = generate(CONFIG, tmp_path / "c")
    assert summary["resumed_from"] == 12 and summary["made_now"] == 12
    assert _hashes(tiny_run) == _hashes(tmp_path / "c")


def test_refuses_to_mix_runs(tiny_run):
    with pytest.raises(ValueError, match="other arguments"):
        generate(GeneratorConfig(12, 12, image_size=64, seed=6, workers=1), tiny_run)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-real", "-1"], "must be >= 0"),
        (["--image-size", "8"], "image_size"),
        (["--workers", "0"], "workers"),
        (["--n-synthetic", "0", "--n-real", "0"], "nothing to generate"),
    ],
)
def test_cli_bad_arguments(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "aims_lib.synth", "--out", str(tmp_path / "o"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr


def test_cli_out_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "aims_lib.synth", "--out", str(f), "--n-real", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not a directory" in proc.stderr
