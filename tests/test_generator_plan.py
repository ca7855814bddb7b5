"""The generator's plan: ids, class balance, splits and chunks are a pure function of the config."""

from collections import Counter

import pytest

from aims_lib import taxonomy
from aims_lib.profiles import PROFILES, get_profile
from aims_lib.synth.generator import CHUNK_SIZE, GeneratorConfig, chunks, plan_samples


def test_paper_scale_plan():
    plan = plan_samples(GeneratorConfig(n_synthetic=4000, n_real=750, seed=0))
    assert [p.image_id for p in plan] == list(range(1, 4751))
    real = [p for p in plan if p.domain == "real"]
    synthetic = [p for p in plan if p.domain == "synthetic"]
    assert {p.split for p in synthetic} == {"train"}
    splits = Counter(p.split for p in real)
    assert (splits["test"], splits["val"], splits["train"]) == (198, 75, 477)
    for part in (real, synthetic):
        counts = Counter(p.fine for p in part).values()
        assert max(counts) - min(counts) <= 1 and len(counts) == 12  # balanced classes
    test_classes = Counter(p.fine for p in real if p.split == "test")
    assert set(test_classes) == set(taxonomy.FINE)  # every class is tested


def test_tiny_plan_still_has_every_split():
    real = [p for p in plan_samples(GeneratorConfig(12, 48, seed=0)) if p.domain == "real"]
    splits = Counter(p.split for p in real)
    assert (splits["test"], splits["val"], splits["train"]) == (13, 5, 30)
    assert len({p.fine for p in real if p.split == "test"}) == 12


def test_plan_is_seeded():
    a = plan_samples(GeneratorConfig(60, 60, seed=1))
    assert a == plan_samples(GeneratorConfig(60, 60, seed=1, workers=4))
    assert a != plan_samples(GeneratorConfig(60, 60, seed=2))


def test_chunks_cover_the_plan_once_and_never_mix_domains():
    plan = plan_samples(GeneratorConfig(100, 70, seed=0))
    cs = chunks(plan)
    assert sorted(p.image_id for c in cs for p in c) == list(range(1, 171))
    assert all(len({p.domain for p in c}) == 1 and len(c) <= CHUNK_SIZE for c in cs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_synthetic": -1, "n_real": 5}, "must be >= 0"),
        ({"n_synthetic": 0, "n_real": 0}, "nothing to generate"),
        ({"n_synthetic": 5, "n_real": 5, "image_size": 8}, "image_size"),
        ({"n_synthetic": 5, "n_real": 5, "workers": 0}, "workers"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GeneratorConfig(**kwargs).validate()


def test_profiles_are_data():
    assert set(PROFILES) == {"smoke", "quick", "paper"}
    paper = get_profile("paper")
    assert (paper.n_synthetic, paper.n_real, paper.render_size) == (4000, 750, 256)
    assert get_profile("smoke", n_real=10, n_synthetic=None).n_real == 10
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown profile settings"):
        get_profile("quick", epochs=3)


def test_on_off_parameters_override_the_profile():
    from aims_lib.profiles import switch

    assert [switch("x", v) for v in ("", "on", "off")] == [None, True, False]
    quick = get_profile("quick")
    assert not quick.pose2d_synthetic_only and get_profile("smoke").pose2d_synthetic_only
    assert get_profile("quick", pose2d_synthetic_only=switch("p", "on")).pose2d_synthetic_only
    assert get_profile("quick", pose2d_synthetic_only=switch("p", "")) == quick
    with pytest.raises(ValueError, match="pose2d_synthetic_only must be '' .*got 'yes'"):
        switch("pose2d_synthetic_only", "yes")


def test_a_dry_run_keeps_the_profiles_code_path_and_cuts_its_sizes():
    from dataclasses import fields

    from aims_lib.profiles import DRY_RUN_SETTINGS, dry_run

    paper = get_profile("paper")
    dry = get_profile("paper", dry=True)
    assert dry == dry_run(paper) == dry_run(dry) and dry.name == "paper-dry-run" and dry.dry_run and not paper.dry_run
    for f in fields(paper):  # every setting that picks code (networks, sizes, sources) is the paper's
        if f.name not in DRY_RUN_SETTINGS and f.name not in ("name", "dry_run"):
            assert getattr(dry, f.name) == getattr(paper, f.name), f.name
    assert (dry.image_arch, dry.pose2d_config, dry.render_size, dry.image_freeze_stages) == (
        "resnet50", "hrnet_w32_256x192.py", 256, 0)
    assert dry.uda_sources == ("synthetic", "synthetic+real") and not dry.pose2d_synthetic_only  # smoke runs it
    assert (dry.n_synthetic, dry.n_real, dry.image_iters, dry.pose2d_epochs) == (12, 20, 2, 1)
    assert get_profile("paper", dry=True, n_real=60).n_real == 60  # overrides apply on top
