import json
import math

import numpy as np
import pytest
import torch

from aims_lib.adaptation import build_method
from aims_lib.adaptation.schedule import ramp_factor
from aims_lib.image_branch import ImageBranch, ImageTrainConfig, train_image_branch
from aims_lib.image_branch import trainer as trainer_mod
from aims_lib.image_branch.trainer import dsan_lr

TINY = dict(arch="resnet18", image_size=32, batch_size=4, epochs=2, iters_per_epoch=2, seed=3)


def test_model_shapes_and_bottleneck():
    model = ImageBranch("resnet18", num_classes=12)
    logits, feats = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 12) and feats.shape == (2, 256)
    assert not model.pretrained
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        ImageBranch("vgg16")


def test_local_weights_load_and_bad_files(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    model = ImageBranch("resnet18", weights=path)
    assert model.pretrained
    assert torch.equal(model.backbone.net.conv1.weight, ref.conv1.weight)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ImageBranch("resnet18", weights=tmp_path / "missing.pth")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="not a resnet18 state dict"):
        ImageBranch("resnet18", weights=path)


def test_an_image_branch_checkpoint_is_a_backbone_start(tmp_path):
    """The synthetic-pretraining fallback: a run's best.pt seeds the next run's backbone, not its heads."""
    first = ImageBranch("resnet18", num_classes=12)
    torch.save({"model": first.state_dict()}, tmp_path / "best.pt")
    second = ImageBranch("resnet18", num_classes=4, weights=tmp_path / "best.pt")
    for (k, a), b in zip(first.backbone.state_dict().items(), second.backbone.state_dict().values()):
        assert torch.equal(a, b), k
    assert second.classifier.out_features == 4


def test_frozen_stages_match_the_full_forward_and_get_no_gradient():
    model = ImageBranch("efficientnet_lite0", num_classes=4, freeze_stages=4).eval()
    x = torch.randn(2, 3, 64, 64)
    h = model.backbone.forward_stages(x, 0, 4)
    assert torch.allclose(model(h, start=4)[0], model(x)[0], atol=1e-5)
    groups = model.parameter_groups(0.01, 0.1)
    frozen = {id(p) for i in range(4) for m in model.backbone.stage_modules(i) for p in m.parameters()}
    assert frozen and not frozen & {id(p) for g in groups for p in g["params"]}
    model.train()
    assert not any(m.training for i in range(4) for m in model.backbone.stage_modules(i))
    assert model.backbone.stage_modules(4)[0].training
    with pytest.raises(ValueError, match="can freeze 0 to 9 stages"):
        ImageBranch("efficientnet_lite0", freeze_stages=10)


def test_ramps_and_schedule():
    assert ramp_factor("none", 0.3, 10) == 1.0
    assert ramp_factor("dsan", 0.0, 0) == 0.0
    assert ramp_factor("dsan", 1.0, 0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert ramp_factor("deepda", 1.0, 10_000) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert ramp_factor("deepda", 0.5, 1000) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # ~0.46
    assert dsan_lr(0.01, 0) == 0.01
    assert dsan_lr(0.01, 10_000) == pytest.approx(0.01 * 4 ** -0.75)


def test_bad_config():
    with pytest.raises(ValueError, match="ramp"):
        ImageTrainConfig(ramp="linear").validate()
    with pytest.raises(ValueError, match="epochs"):
        ImageTrainConfig(epochs=0).validate()
    with pytest.raises(ValueError, match="target oracle.*source_only"):
        ImageTrainConfig(source="real", method="lmmd").validate()
    with pytest.raises(ValueError, match="method must be one of source_only, lmmd, dan, dann, cdan, mcc, got 'coral'"):
        ImageTrainConfig(method="coral").validate()
    with pytest.raises(ValueError, match="adaptation_weight must be >= 0, got -1"):
        ImageTrainConfig(adaptation_weight=-1.0).validate()


def test_weight_and_ramp_default_to_the_method():
    assert (ImageTrainConfig().adaptation_weight, ImageTrainConfig().ramp) == (0.5, "deepda")  # LMMD, the paper's
    assert (ImageTrainConfig(method="dann").adaptation_weight, ImageTrainConfig(method="dann").ramp) == (1.0, "none")
    given = ImageTrainConfig(method="mcc", adaptation_weight=0.3, ramp="dsan")
    assert (given.adaptation_weight, given.ramp) == (0.3, "dsan")
    # source-only has no adaptation loss: nothing to weigh, whatever a notebook passes
    plain = ImageTrainConfig(method="source_only", adaptation_weight=0.5, ramp="deepda")
    assert (plain.adaptation_weight, plain.ramp) == (0.0, "none")


def test_training_writes_run_and_its_outputs(aims_tiny, tmp_path):
    metrics = train_image_branch(aims_tiny, tmp_path / "run", ImageTrainConfig(**TINY))
    run = tmp_path / "run"
    for f in ("config.json", "metrics.json", "outputs.npz", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (run / f).is_file(), f
    out = np.load(run / "outputs.npz")
    assert out["logits"].shape == (12, 4) and out["features"].shape == (12, 256)
    assert sorted(out["image_id"].tolist()) == list(range(1, 13))
    assert len(metrics["history"]) == 2 and math.isfinite(metrics["history"][-1]["lmmd"])
    assert metrics["best_val_acc"] == max(h["val_acc"] for h in metrics["history"])
    assert json.loads((run / "metrics.json").read_text())["test_acc"] == metrics["test_acc"]
    from aims_lib.data import load_dataset
    from aims_lib.image_branch import predictions_of_run

    samples = load_dataset(aims_tiny).samples[::-1]  # in the samples' order, whatever the file's
    logits = predictions_of_run(run, samples)
    np.testing.assert_array_equal(logits, out["logits"][[list(out["image_id"]).index(s.image_id) for s in samples]])
    with pytest.raises(FileNotFoundError, match="train the run first"):
        predictions_of_run(tmp_path / "nowhere", samples)


def test_target_oracle_trains_on_real_labels_only(aims_tiny, tmp_path):
    metrics = train_image_branch(aims_tiny, tmp_path / "oracle", ImageTrainConfig(**{**TINY, "source": "real", "method": "source_only"}))
    assert metrics["config"]["source"] == "real"
    assert set(metrics["history"][-1]) == {"epoch", "ce", "val_acc", "lr", "seconds"}  # no adaptation loss
    assert math.isfinite(metrics["test_acc"])


@pytest.mark.parametrize("method", ["lmmd", "dann"])
def test_resume_gives_the_same_weights(aims_tiny, tmp_path, monkeypatch, method):
    """Also the method's own weights (DANN's discriminator), which last.pt carries."""
    cfg = ImageTrainConfig(**TINY, method=method)
    train_image_branch(aims_tiny, tmp_path / "full", cfg)

    real_predict = trainer_mod.predict
    calls = {"n": 0}

    def crash_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "predict", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_image_branch(aims_tiny, tmp_path / "resumed", cfg)
    monkeypatch.setattr(trainer_mod, "predict", real_predict)
    train_image_branch(aims_tiny, tmp_path / "resumed", cfg)

    full = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed/checkpoints/last.pt", weights_only=True)
    for part in ("model", "adaptation"):
        a, b = full[part], resumed[part]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (part, k)
    assert bool(full["adaptation"]) == (method == "dann")


def test_run_directory_refuses_other_settings(aims_tiny, tmp_path):
    train_image_branch(aims_tiny, tmp_path / "run", ImageTrainConfig(**{**TINY, "epochs": 1}))
    with pytest.raises(ValueError, match="other settings"):
        train_image_branch(aims_tiny, tmp_path / "run", ImageTrainConfig(**{**TINY, "epochs": 1, "lr": 0.1}))


def test_finished_run_is_reused(aims_tiny, tmp_path):
    cfg = ImageTrainConfig(**{**TINY, "epochs": 1})
    first = train_image_branch(aims_tiny, tmp_path / "run", cfg)
    stamp = (tmp_path / "run" / "outputs.npz").stat().st_mtime_ns
    again = train_image_branch(aims_tiny, tmp_path / "run", cfg)
    assert again == json.loads(json.dumps(first))  # the stored metrics, nothing retrained or re-predicted
    assert (tmp_path / "run" / "outputs.npz").stat().st_mtime_ns == stamp


def test_oracle_target_labels_change_the_lmmd_class_weights(aims_tiny, tmp_path):
    with pytest.raises(ValueError, match="target_labels"):
        ImageTrainConfig(target_labels="guessed").validate()
    runs = {t: train_image_branch(aims_tiny, tmp_path / t, ImageTrainConfig(**{**TINY, "epochs": 1, "target_labels": t}))
            for t in ("predicted", "oracle")}
    first = {t: m["history"][0] for t, m in runs.items()}
    # the same data and initial weights; only LMMD's target class weights differ
    assert first["predicted"]["lmmd"] != first["oracle"]["lmmd"]


def test_profile_config_and_run_names():
    from aims_lib.image_branch import profile_config, run_name
    from aims_lib.profiles import get_profile

    cfg = profile_config(get_profile("quick"), "fine", "synthetic", "lmmd", seed=4)
    assert (cfg.arch, cfg.image_size, cfg.level, cfg.seed, cfg.freeze_stages) == ("efficientnet_lite0", 160, "fine", 4, 7)
    assert run_name("coarse", "synthetic", "lmmd") == "image_coarse_synthetic_lmmd"
    assert run_name("coarse", "synthetic", "lmmd", 0.5) == "image_coarse_synthetic_lmmd"  # the paper's weight
    assert run_name("coarse", "synthetic", "lmmd", 0.1) == "image_coarse_synthetic_lmmd_lambda0.1"
    assert run_name("coarse", "synthetic", "dann") == run_name("coarse", "synthetic", "dann", 1.0) == "image_coarse_synthetic_dann"
    assert run_name("coarse", "synthetic", "dann", 0.5) == "image_coarse_synthetic_dann_lambda0.5"
    assert run_name("coarse", "synthetic", "source_only", 0.1) == "image_coarse_synthetic_source_only"
    assert run_name("coarse", "real", "source_only", train_seed=2) == "image_coarse_real_source_only_seed2"
    assert run_name("fine", "synthetic", "lmmd", 0.1, train_seed=0) == "image_fine_synthetic_lmmd_lambda0.1_seed0"


def test_training_seeds_and_report_folders():
    from aims_lib.files import REPO
    from aims_lib.profiles import reports_path, training_seeds

    assert training_seeds(0, "0 1 2") == [0, 1, 2] and training_seeds(7, "") == [7] and training_seeds(1, [2, 1, 2]) == [1, 2]
    with pytest.raises(ValueError, match="train_seeds: 'x' is not an integer"):
        training_seeds(0, "1 x")
    assert reports_path("quick", 0) == REPO / "reports" / "quick" / "seed0"
    assert reports_path("quick", 777) != reports_path("quick", 0)  # side by side, never the same runs
    assert reports_path("paper", 1, "data/real/syrip_aims") == REPO / "reports" / "paper" / "syrip_aims-seed1"


def test_cached_frozen_stages_equal_the_whole_network_and_are_shared(aims_tiny, tmp_path):
    """With frozen stages a run reads a cache shared with the next run (built once), and its
    outputs equal the whole network run on the images."""
    from aims_lib.data import load_dataset
    from aims_lib.data.torch_datasets import ImageDataset

    lite = {**TINY, "arch": "efficientnet_lite0", "freeze_stages": 4}
    train_image_branch(aims_tiny, tmp_path / "runs" / "a", ImageTrainConfig(**lite))
    caches = list((tmp_path / "runs" / "trunk_cache").glob("*.pt"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    train_image_branch(aims_tiny, tmp_path / "runs" / "b", ImageTrainConfig(**{**lite, "method": "source_only"}))
    assert caches[0].stat().st_mtime_ns == stamp  # read, not rebuilt

    model = ImageBranch("efficientnet_lite0", 4, freeze_stages=4)
    model.load_state_dict(torch.load(tmp_path / "runs/a/checkpoints/best.pt", weights_only=True)["model"])
    model.eval()
    ds = ImageDataset(load_dataset(aims_tiny), image_size=32, normalization=model.normalization)
    with torch.no_grad():
        direct = model(torch.stack([ds[i]["image"] for i in range(len(ds))]))[0].numpy()
    out = np.load(tmp_path / "runs/a/outputs.npz")
    row = {int(i): r for r, i in enumerate(out["image_id"])}
    np.testing.assert_allclose(out["logits"][[row[s.image_id] for s in ds.samples]], direct, atol=1e-4)


def test_channels_last_prediction_equals_the_default_layout(aims_tiny):
    """finalize_run predicts channels-last (faster on oneDNN and cuDNN): the same logits and
    features as the default layout, within float32 rounding."""
    from aims_lib.data import load_dataset
    from aims_lib.data.torch_datasets import ImageDataset

    torch.manual_seed(0)
    model = ImageBranch("resnet50", 12)
    ds = ImageDataset(load_dataset(aims_tiny), image_size=64, normalization=model.normalization)
    default = trainer_mod.predict(model, ds, torch.device("cpu"))
    assert next(model.parameters()).is_contiguous()
    fast = trainer_mod.predict(model, ds, torch.device("cpu"), channels_last=True)
    assert next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(fast[0], default[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fast[1], default[1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(fast[2], default[2])


def test_dann_trains_its_discriminator_with_the_network(aims_tiny, tmp_path):
    metrics = train_image_branch(aims_tiny, tmp_path / "dann", ImageTrainConfig(**{**TINY, "method": "dann"}))
    assert all(math.isfinite(h["dann"]) for h in metrics["history"]) and "lmmd" not in metrics["history"][0]
    state = torch.load(tmp_path / "dann/checkpoints/last.pt", weights_only=True)
    torch.manual_seed(TINY["seed"])  # the discriminator's initial weights, drawn after the network's
    ImageBranch("resnet18", 4)
    initial = build_method("dann", 4, 256).state_dict()["discriminator.0.weight"]
    train_image_branch(aims_tiny, tmp_path / "still", ImageTrainConfig(**{**TINY, "method": "dann", "lr": 0.0}))
    still = torch.load(tmp_path / "still/checkpoints/last.pt", weights_only=True)
    assert torch.equal(still["adaptation"]["discriminator.0.weight"], initial)  # at lr 0 it stays where it began
    assert not torch.equal(state["adaptation"]["discriminator.0.weight"], initial)
    assert len(state["optimizer"]["param_groups"]) == 3  # backbone, heads, discriminator
    assert state["optimizer"]["param_groups"][2]["base_lr"] == ImageTrainConfig().lr  # the heads' rate



def test_test_labels_never_influence_training_or_selection(aims_tiny, tmp_path):
    """The same run on a copy of the data whose real test labels are changed: every weight, the
    selected epoch and the validation history are identical; only the test accuracy may move."""
    import shutil

    from aims_lib import taxonomy

    other = tmp_path / "relabelled"
    shutil.copytree(aims_tiny.parent, other)
    data = json.loads((other / "annotations.json").read_text())
    for img in data["images"]:
        if img["split"] == "test":
            img["aims_fine"] = "Prone Lying" if img["aims_fine"] != "Prone Lying" else "Standing"
            img["aims_coarse"] = taxonomy.FINE_TO_COARSE[img["aims_fine"]]
    (other / "annotations.json").write_text(json.dumps(data))
    cfg = ImageTrainConfig(**TINY)
    a = train_image_branch(aims_tiny, tmp_path / "a", cfg)
    b = train_image_branch(other / "annotations.json", tmp_path / "b", cfg)
    assert a["best_epoch"] == b["best_epoch"]
    assert [h["val_acc"] for h in a["history"]] == [h["val_acc"] for h in b["history"]]
    best_a = torch.load(tmp_path / "a" / "checkpoints" / "best.pt", weights_only=True)["model"]
    best_b = torch.load(tmp_path / "b" / "checkpoints" / "best.pt", weights_only=True)["model"]
    for name, value in best_a.items():
        torch.testing.assert_close(value, best_b[name], rtol=0, atol=0, msg=name)
