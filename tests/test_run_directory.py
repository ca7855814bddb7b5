import json
from dataclasses import asdict
from types import SimpleNamespace

import pytest

from aims_lib.run_directory import claim_run_directory, per_group

SETTINGS = {"seed": 0, "lr": 0.01, "domains": ("synthetic", "real"), "device": "cpu", "num_workers": 0}
MACHINE = ("device", "num_workers")


def test_the_same_settings_are_accepted_and_stored_as_json(tmp_path):
    stored = claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE)
    assert stored == {**SETTINGS, "domains": ["synthetic", "real"]}  # tuples as lists, as JSON reads them back
    assert json.loads((tmp_path / "run" / "settings.json").read_text()) == stored
    assert claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE) == stored


def test_other_settings_are_refused_naming_old_and_new(tmp_path):
    claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE)
    before = (tmp_path / "run" / "settings.json").read_bytes()
    message = f"{tmp_path / 'run'} holds a run with other settings {{'seed': (0, 1)}} (old, new): use another run directory"
    with pytest.raises(ValueError) as refused:
        claim_run_directory(tmp_path / "run", "settings.json", {**SETTINGS, "seed": 1}, MACHINE)
    assert str(refused.value) == message
    assert (tmp_path / "run" / "settings.json").read_bytes() == before
    with pytest.raises(ValueError, match=r"other settings \{'extra': \(None, 2\)\}"):  # a setting the run lacks
        claim_run_directory(tmp_path / "run", "settings.json", {**SETTINGS, "extra": 2}, MACHINE)


def test_machine_only_settings_may_change_and_are_stored(tmp_path):
    claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE)
    moved = {**SETTINGS, "device": "cuda", "num_workers": 4}
    claim_run_directory(tmp_path / "run", "settings.json", moved, MACHINE)
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["device"] == "cuda"


def test_only_the_main_process_writes(tmp_path):
    claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE, main=False)
    assert not (tmp_path / "run").exists()
    claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE)
    before = (tmp_path / "run" / "settings.json").read_bytes()
    claim_run_directory(tmp_path / "run", "settings.json", {**SETTINGS, "device": "cuda"}, MACHINE, main=False)
    assert (tmp_path / "run" / "settings.json").read_bytes() == before
    with pytest.raises(ValueError, match="other settings"):  # every process checks
        claim_run_directory(tmp_path / "run", "settings.json", {**SETTINGS, "lr": 0.1}, MACHINE, main=False)


def test_a_source_only_run_is_the_same_whatever_weight_it_is_given(tmp_path):
    """A method that reads no target has no weight or ramp: a notebook's LMMD weight is not a setting of it."""
    from aims_lib.image_branch.trainer import MACHINE_SETTINGS, ImageTrainConfig

    given = ImageTrainConfig(method="source_only", adaptation_weight=0.5, ramp="deepda")
    claim_run_directory(tmp_path / "run", "config.json", asdict(given), MACHINE_SETTINGS)
    claim_run_directory(tmp_path / "run", "config.json", asdict(ImageTrainConfig(method="source_only")), MACHINE_SETTINGS)
    with pytest.raises(ValueError, match=r"other settings \{'method'"):
        claim_run_directory(tmp_path / "run", "config.json", asdict(ImageTrainConfig(method="lmmd")), MACHINE_SETTINGS)


def test_bad_claims(tmp_path):
    with pytest.raises(ValueError, match=r"machine-only keys \['processes'\] are not among the settings"):
        claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, ("device", "processes"))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "settings.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"settings.json holds no settings \(a JSON object\)"):
        claim_run_directory(tmp_path / "run", "settings.json", SETTINGS, MACHINE)
    with pytest.raises(TypeError, match="not JSON serializable"):
        claim_run_directory(tmp_path / "other", "settings.json", {**SETTINGS, "path": tmp_path}, MACHINE)
    assert not (tmp_path / "other").exists()


def _samples(*pairs: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(domain=p.split("/")[0], split=p.split("/")[1]) for p in pairs]


def test_groups_are_keyed_domain_split_in_a_fixed_order():
    samples = _samples("real/test", "synthetic/val", "real/train", "synthetic/train", "real/test", "synthetic/train")
    groups = per_group(samples, lambda idx: idx)
    assert list(groups) == ["synthetic/train", "synthetic/val", "real/train", "real/test"]  # empty groups left out
    assert groups == {"synthetic/train": [3, 5], "synthetic/val": [1], "real/train": [2], "real/test": [0, 4]}
    assert per_group([], len) == {}


def test_groups_refuse_an_unknown_domain_or_split():
    with pytest.raises(ValueError, match="sample 1 has domain 'real' and split 'holdout': valid are synthetic, real and train, val, test"):
        per_group(_samples("real/test", "real/holdout"), len)
