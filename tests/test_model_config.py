"""2D model configs: a run directory or config file someone sends never runs code when loaded.

Crafted configs (a ``config.py`` that writes a marker, a JSON config whose ``custom_imports``
or ``type`` reach a module that writes one) are refused before their payload runs, with an
error that names the file, the field and the opt-in; our own configs stored as JSON build the
same model as the Python files they came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aims_lib.pose_branch import keypoints2d as k2d
from aims_lib.pose_branch import model_config as mc
from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator

LITE0 = mc.CONFIG_DIR / "lite0_160x160.py"


def _marker_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: Path) -> str:
    """An importable module whose import (or whose ``make``) creates ``marker``."""
    name = f"payload_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
        f"def make(**kwargs):\n    Path({str(marker)!r}).touch()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def _run_dir(root: Path, config: Path = k2d.CPU_CONFIG) -> Path:
    """A keypoints2d run directory as training leaves it: ``config.json`` and a best checkpoint."""
    root.mkdir(parents=True)
    mc.write_config_data(mc.read_config(config), root / mc.RUN_CONFIG_FILE)
    estimator = Pose2DEstimator.load(config)
    torch.save({"state_dict": estimator.model.state_dict()}, root / "best_PCK_epoch_1.pth")
    return root


def _crafted_legacy_run(root: Path, marker: Path) -> Path:
    """A run directory of the old layout whose ``config.py`` creates ``marker`` when executed."""
    run = _run_dir(root)
    (run / mc.RUN_CONFIG_FILE).unlink()
    (run / mc.LEGACY_RUN_CONFIG_FILE).write_text(
        f"open({str(marker)!r}, 'w').close()\n_base_ = [{str(k2d.CPU_CONFIG)!r}]\n")
    return run


def test_json_config_builds_the_model_of_its_python_file(tmp_path: Path) -> None:
    """Stored as data, our configs give the same model and keypoints: tuples become lists, the
    registration modules are imported by the loader, nothing else changes."""
    images = [(np.random.default_rng(i).random((90, 70, 3)) * 255).astype(np.uint8) for i in range(2)]
    for config in (LITE0, k2d.CPU_CONFIG):
        mc.write_config_data(mc.read_config(config), tmp_path / f"{config.stem}.json")
        data = json.loads((tmp_path / f"{config.stem}.json").read_text())
        assert data["model"]["type"] == "TopdownPoseEstimator"
        torch.manual_seed(0)
        from_py = Pose2DEstimator.load(config)
        from_json = Pose2DEstimator.load(tmp_path / f"{config.stem}.json")
        from_json.model.load_state_dict(from_py.model.state_dict())
        assert from_json.config == tmp_path / f"{config.stem}.json"
        for a, b in zip(from_py.predict(images), from_json.predict(images), strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_legacy_run_config_py_is_refused_unless_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = _crafted_legacy_run(tmp_path / "run", marker)
    with pytest.raises(mc.UntrustedConfigError, match=r"run/config\.py: refused.*trusted_config=True.*--trust pose2d_config"):
        Pose2DEstimator.load(run)
    assert not marker.exists()
    Pose2DEstimator.load(run, trusted_config=True)  # the named opt-in: the user vouches for the folder
    assert marker.exists()


def test_a_python_config_outside_the_repository_is_refused_unless_trusted(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config = tmp_path / "my_hrnet.py"
    config.write_text(f"open({str(marker)!r}, 'w').close()\n_base_ = [{str(k2d.CPU_CONFIG)!r}]\n")
    for load in (lambda: Pose2DEstimator.load(config),
                 lambda: k2d.Pose2DTrainConfig(config=str(config)).validate(),
                 lambda: k2d.build_run_config(k2d.Pose2DTrainConfig(config=str(config)), {}, tmp_path, tmp_path, 1)):
        with pytest.raises(mc.UntrustedConfigError, match=r"my_hrnet\.py: refused.*TRUST_POSE2D_CONFIG=1"):
            load()
    assert not marker.exists()
    k2d.Pose2DTrainConfig(config=str(config), trust_config=True).validate()
    assert not marker.exists()  # validation reads nothing
    Pose2DEstimator.load(config, trusted_config=True)
    assert marker.exists()
    # a repository config reached through a link is still the repository's
    (tmp_path / "link.py").symlink_to(LITE0)
    mc.check_config_path(tmp_path / "link.py")


def test_json_custom_imports_of_another_module_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    module = _marker_module(tmp_path, monkeypatch, marker)
    data = mc.read_config(LITE0).to_dict()
    data["custom_imports"] = {"imports": ["aims_lib.pose_branch.mmpose_backbone", module], "allow_failed_imports": False}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(mc.UntrustedConfigError, match=rf"config\.json: refused: custom_imports = .*{module}.*imports modules"):
        Pose2DEstimator.load(tmp_path / "config.json")
    assert not marker.exists()


def test_a_type_that_names_a_module_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mmengine imports a ``type`` its registries lack and calls it: ``type="pkg.make"``."""
    marker = tmp_path / "pwned"
    module = _marker_module(tmp_path, monkeypatch, marker)
    marker.unlink(missing_ok=True)
    data = mc.read_config(k2d.CPU_CONFIG).to_dict()
    data["model"]["head"]["loss"] = {"type": f"{module}.make"}
    run = tmp_path / "run"
    run.mkdir()
    (run / mc.RUN_CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(mc.UntrustedConfigError, match=rf"model\.head\.loss\.type = '{module}\.make' is not a name registered"):
        Pose2DEstimator.load(run)
    assert not marker.exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(_base_=["./other.py"]), r"_base_ = \['./other.py'\] inherits"),
    (lambda d: d.update(default_scope="mmdet"), r"default_scope = 'mmdet' is not one of mmengine, mmpose"),
    (lambda d: d["model"].update(_scope_="evil"), r"model\._scope_ = 'evil'"),
    (lambda d: d["model"]["backbone"].update(init_cfg={"type": "Pretrained", "checkpoint": "https://example.org/w.pth"}),
     r"model\.backbone\.init_cfg\.checkpoint = 'https://example.org/w.pth' is a URL"),
    (lambda d: d.update(load_from="torchvision://resnet50"), r"load_from = 'torchvision://resnet50' is a URL"),
    (lambda d: d["train_dataloader"]["dataset"].update(data_prefix={"img": ["s3://bucket/x"]}), r"data_prefix\.img\[0\] = 's3://bucket/x'"),
    (lambda d: d["visualizer"]["vis_backends"].append({"type": "WandbVisBackend"}), r"'WandbVisBackend' reaches the network"),
    (lambda d: d["train_dataloader"]["dataset"].update(metainfo={"from_file": "/tmp/evil_meta.py"}),
     r"metainfo\.from_file = '/tmp/evil_meta.py' is read as Python"),
    (lambda d: d["train_dataloader"]["dataset"].update(backend_args={"backend": "http"}), r"backend_args\.backend = 'http'"),
    (lambda d: d["model"].update(type=["TopdownPoseEstimator"]), r"model\.type = \['TopdownPoseEstimator'\] is not a name"),
])
def test_config_data_that_could_run_code_or_reach_the_network_is_refused(change: Any, message: str) -> None:
    data = mc.read_config(LITE0).to_dict()
    mc.check_config_data(data, "ok.json")  # ours passes as it is
    change(data)
    with pytest.raises(mc.UntrustedConfigError, match=rf"bad\.json: refused: .*{message}.*opt in"):
        mc.check_config_data(data, "bad.json")


def test_mmposes_own_dataset_metadata_file_is_admitted() -> None:
    data = mc.read_config(LITE0).to_dict()
    data["train_dataloader"]["dataset"]["metainfo"] = {"from_file": "configs/_base_/datasets/coco.py"}
    mc.check_config_data(data, "ok.json")


def test_broken_json_configs_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text("[1, 2]")
    (tmp_path / "c.yaml").write_text("model: {}")
    with pytest.raises(ValueError, match=r"a\.json: not a JSON config"):
        mc.read_config(tmp_path / "a.json")
    with pytest.raises(ValueError, match=r"b\.json: a config is a JSON object, got list"):
        mc.read_config(tmp_path / "b.json")
    with pytest.raises(ValueError, match=r"c\.yaml: a pose2d config is a \.py .* or a \.json file, not '\.yaml'"):
        mc.read_config(tmp_path / "c.yaml")
    with pytest.raises(FileNotFoundError, match="not a keypoints2d run directory"):
        mc.read_run_config(tmp_path)


def test_a_crafted_predictor_directory_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A predictor folder someone sends: its 2D run's ``config.py`` is refused by the API and the
    command line, its estimator entry cannot name a module; the clean folder predicts."""
    from aims_lib.hipc import HIPCTrainConfig, save_hipc, train_hipc
    from aims_lib.image_branch import ImageTrainConfig, train_image_branch
    from aims_lib.predict import AIMSPosePredictor, write_manifest
    from aims_lib.predict.cli import main

    fixture = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny"
    train_image_branch(fixture / "annotations.json", tmp_path / "image", ImageTrainConfig(
        level="coarse", method="source_only", arch="resnet18", image_size=32, batch_size=4, epochs=1, iters_per_epoch=1))
    rng = np.random.default_rng(0)
    save_hipc(tmp_path / "hipc.pt", train_hipc(rng.normal(size=(24, 17, 3)).astype(np.float32), np.arange(24) % 12,
                                               HIPCTrainConfig(epochs=1, batch_size=8), rng.dirichlet(np.ones(4), 24)))
    smplify = {"stage1_iters": 2, "tilts": [0.0], "pose_starts": 1, "explore_iters": 1, "stage2_iters": 2}
    components = {"image_branch": tmp_path / "image", "hipc": tmp_path / "hipc.pt", "smplify": smplify}
    clean = write_manifest(tmp_path / "clean", pose2d=_run_dir(tmp_path / "pose2d"), **components).parent
    image = sorted((fixture / "images").glob("*.png"))[0]
    assert len(AIMSPosePredictor.load(clean).predict([image])) == 1

    marker = tmp_path / "pwned"
    crafted = write_manifest(tmp_path / "crafted", pose2d=_crafted_legacy_run(tmp_path / "legacy", marker), **components).parent
    with pytest.raises(mc.UntrustedConfigError, match=r"legacy/config\.py: refused.*trust=\('pose2d_config',\)"):
        AIMSPosePredictor.load(crafted)
    capsys.readouterr()
    assert main([str(image), "--run", str(crafted), "--out", str(tmp_path / "p.csv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.py: refused" in err[0] and "--trust pose2d_config" in err[0]
    assert not marker.exists() and not (tmp_path / "p.csv").exists()

    manifest = json.loads((clean / "predictor.json").read_text())
    manifest["pose2d_estimator"] = "os:system"
    shutil.copytree(clean, tmp_path / "renamed")
    (tmp_path / "renamed" / "predictor.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"renamed/predictor\.json: pose2d_estimator 'os:system' is not a registered"):
        AIMSPosePredictor.load(tmp_path / "renamed")


def test_reproduce_refuses_an_untrusted_python_config_before_any_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aims_lib import reproduce

    monkeypatch.setattr(reproduce, "reproduce", lambda *a, **k: pytest.fail("a notebook ran"))
    config = tmp_path / "mine.py"
    config.write_text("raise SystemExit('executed')\n")
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["--pose2d-config", str(config), "--reports", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "mine.py: refused" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce.main(["--trust-pose2d-config", "--reports", str(tmp_path)])
    assert "--trust-pose2d-config names no file" in capsys.readouterr().err
