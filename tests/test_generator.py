"""The generator end to end on a tiny run: valid data, determinism, resume, clear errors."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aims_lib.body import DEFAULT_BETAS
from aims_lib.camera import project
from aims_lib.data import load_dataset
from aims_lib.synth import generator as gen
from aims_lib.synth.domains import DOMAIN_SETTINGS
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
        assert labelled.sum() >= DOMAIN_SETTINGS[s.domain].photo.framing.min_keypoints  # the real proxy crops
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


def test_annotations_record_each_domains_shape_space(tiny_run):
    """Synthetic bodies: the fitted shape space (10 betas). The real proxy's: every component of
    the body (14 procedural) and the region coefficients outside the body's shape space."""
    from aims_lib.body import SHAPE_COMPONENTS
    from aims_lib.synth.body_shift import REGIONS

    raw = json.loads((tiny_run / "annotations.json").read_text())
    domain = {im["id"]: im["domain"] for im in raw["images"]}
    synthetic = [a["body"] for a in raw["annotations"] if domain[a["image_id"]] == "synthetic"]
    real = [a["body"] for a in raw["annotations"] if domain[a["image_id"]] == "real"]
    assert {len(b["betas"]) for b in synthetic} == {DEFAULT_BETAS} == {10} and not any("regions" in b for b in synthetic)
    assert {len(b["betas"]) for b in real} == {len(SHAPE_COMPONENTS)} and {len(b["regions"]) for b in real} == {len(REGIONS)}
    assert all(np.abs(b["regions"]).max() > 0 and 0.005 <= b["clothing_m"]["diaper"] <= 0.02 for b in real)


def test_resume_removes_temporary_files_of_a_killed_run(tiny_run, tmp_path):
    out = tmp_path / "killed"
    shutil.copytree(tiny_run, out)
    (out / "records" / "chunk_00001.json").unlink()  # the chunk being made when it was killed
    leftovers = [  # names as atomic_write_bytes's mkstemp gives them
        out / "images" / "real" / ".000013.jpg.k3j2l1x0.tmp",
        out / "records" / ".chunk_00001.json.ab12cd34.tmp",
        out / ".annotations.json.zz9yy8xx.tmp",
        out / ".generator.json.q1w2e3r4.tmp",
    ]
    for path in leftovers:
        path.write_bytes(b"half-written")
    mine = out / "images" / "real" / "notes.tmp"  # not a name the generator writes: kept
    mine.write_text("user file")
    summary = generate(CONFIG, out)
    assert summary["made_now"] == 12 and summary["render_platform"] in ("egl", "osmesa")
    assert [p for p in leftovers if p.exists()] == [] and mine.exists()
    mine.unlink()
    assert _hashes(out) == _hashes(tiny_run)


def test_resume_without_generator_json_checks_annotations_first(tiny_run, tmp_path):
    out = tmp_path / "no_manifest"
    shutil.copytree(tiny_run, out)
    (out / "generator.json").unlink()
    before = _hashes(out)
    with pytest.raises(ValueError, match=r"annotations\.json.*other arguments.*'seed': \(5, 6\)"):
        generate(GeneratorConfig(12, 12, image_size=64, seed=6, workers=1), out)
    assert _hashes(out) == before  # nothing written, nothing mixed
    summary = generate(CONFIG, out)  # the same arguments: resumes, and restores the manifest
    assert summary["made_now"] == 0 and summary["resumed_from"] == 24
    assert summary["render_platform"] is None  # nothing rendered, no platform probed
    assert _hashes(out) == _hashes(tiny_run)


def test_resume_refuses_records_whose_arguments_are_unknown(tiny_run, tmp_path):
    out = tmp_path / "bare"
    shutil.copytree(tiny_run, out)
    (out / "generator.json").unlink()
    (out / "annotations.json").unlink()
    with pytest.raises(ValueError, match=r"records.*neither generator\.json nor annotations\.json"):
        generate(CONFIG, out)
    assert not (out / "generator.json").exists()


def test_annotations_without_generator_arguments_are_named(tiny_run, tmp_path):
    out = tmp_path / "foreign"
    shutil.copytree(tiny_run, out)
    (out / "generator.json").unlink()
    data = json.loads((out / "annotations.json").read_text())
    del data["info"]["arguments"]
    (out / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotations\.json: info\.arguments is missing"):
        generate(CONFIG, out)


def test_corrupt_finished_image_is_redone_on_resume(tiny_run, tmp_path):
    out = tmp_path / "corrupt"
    shutil.copytree(tiny_run, out)
    image = out / "images" / "synthetic" / "000003.jpg"
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])  # a truncated JPEG
    summary = generate(CONFIG, out)
    assert summary["made_now"] == 12 and summary["resumed_from"] == 12  # its chunk, only
    assert summary["redone_images"] == ["images/synthetic/000003.jpg"]
    assert _hashes(out) == _hashes(tiny_run)


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What the generator's command line prints when it refuses ``args`` (exit status 2), in this
    process (test_cli_renders_a_smil_format_file runs ``python -m aims_lib.synth`` itself)."""
    from aims_lib.synth.__main__ import main

    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--n-real", "-1"], "must be >= 0"),
        (["--image-size", "8"], "image_size"),
        (["--workers", "0"], "workers"),
        (["--n-synthetic", "0", "--n-real", "0"], "nothing to generate"),
    ],
)
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    assert message in _cli_error(["--out", str(tmp_path / "o"), *args], capsys)
    assert not (tmp_path / "o").exists()


def test_cli_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert "not a directory" in _cli_error(["--out", str(f), "--n-real", "2"], capsys)
    assert f.read_text() == "x"


def test_renders_a_given_body_file(tmp_path):
    """``body=``: a SMPL-format file (here the procedural infant made 15 % larger, with 20 shape
    components as SMIL has) renders through the safe loader; the annotations hold that body's
    keypoints and name it, and the run records which file made it."""
    import torch

    from aims_lib.body import body_forward, load_body_model, procedural_arrays, write_smpl_pickle

    arrays = dict(procedural_arrays())
    rng = np.random.default_rng(0)
    arrays["v_template"] = arrays["v_template"] * 1.15
    extra = 1e-3 * rng.normal(size=(*arrays["shapedirs"].shape[:2], 20 - arrays["shapedirs"].shape[2]))
    arrays["shapedirs"] = np.concatenate([arrays["shapedirs"], extra], axis=2)
    body = write_smpl_pickle(arrays, tmp_path / "smil_web.pkl")
    out = tmp_path / "smil"
    generate(GeneratorConfig(6, 0, image_size=64, seed=5, workers=1, body=str(body)), out)
    ds = load_dataset(out)
    raw = json.loads((out / "annotations.json").read_text())
    assert ds.info["body"] == "smil_web.pkl" and "smil_web.pkl" in ds.info["description"]
    assert ds.info["arguments"]["body_sha256"] == hashlib.sha256(body.read_bytes()).hexdigest()
    assert {a["body"]["model"] for a in raw["annotations"]} == {"smil_web.pkl"}
    model = load_body_model(body, num_betas=DEFAULT_BETAS)
    for ann in raw["annotations"][:3]:
        p = {k: torch.tensor([ann["body"][k]], dtype=torch.float32) for k in ("betas", "body_pose", "global_orient", "transl")}
        posed = body_forward(model, p["betas"], p["body_pose"], p["global_orient"], p["transl"]).keypoints[0]
        np.testing.assert_allclose(ann["keypoints_3d_world"], posed.numpy(), atol=2e-3)
    procedural = load_body_model(num_betas=DEFAULT_BETAS)
    ann = raw["annotations"][0]
    p = {k: torch.tensor([ann["body"][k]], dtype=torch.float32) for k in ("betas", "body_pose", "global_orient", "transl")}
    smaller = body_forward(procedural, p["betas"], p["body_pose"], p["global_orient"], p["transl"]).keypoints[0].numpy()
    assert np.abs(np.asarray(ann["keypoints_3d_world"]) - smaller).max() > 0.02  # not the procedural body's
    with pytest.raises(ValueError, match="other arguments.*body"):
        generate(GeneratorConfig(6, 0, image_size=64, seed=5, workers=1), out)


def test_cli_renders_a_smil_format_file(smil_like, tmp_path):
    """The SMIL layout (chumpy objects, sparse regressor, 20 components) renders through --body
    without chumpy, and the run names the file."""
    path, _ = smil_like
    out = tmp_path / "smil_run"
    proc = subprocess.run([sys.executable, "-m", "aims_lib.synth", "--out", str(out), "--n-synthetic", "3",
                           "--n-real", "0", "--image-size", "64", "--workers", "1", "--body", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ds = load_dataset(out)
    assert len(ds) == 3 and ds.info["body"] == "smil_web.pkl" and "chumpy" not in sys.modules


def test_cli_trust_needs_a_body_file(tmp_path, capsys):
    assert "--trust-body names no file" in _cli_error(["--out", str(tmp_path / "x"), "--trust-body"], capsys)
