"""The method x source table of notebook 05: plan, training through the trainer, scoring, results.json."""

import json
from pathlib import Path

import pytest

from aims_lib.image_branch import run_key
from aims_lib.image_branch.comparison import Cell, MethodComparison, compare_methods, comparison_plan, table_rows
from aims_lib.paper_tables import PAPER_COMPARISONS
from aims_lib.profiles import get_profile
from aims_lib.reproduce import _check_uda_methods, results_markdown
from aims_lib.statistics import Comparison


def test_plan_runs_the_papers_methods_everywhere_and_the_others_where_asked():
    plan = comparison_plan(["source_only", "lmmd", "dann", "mcc"], ["synthetic", "synthetic+real"], ["synthetic"])
    assert plan == {"source_only": ("synthetic", "synthetic+real"), "lmmd": ("synthetic", "synthetic+real"),
                    "dann": ("synthetic",), "mcc": ("synthetic",)}
    assert comparison_plan(["dan"], ["synthetic", "synthetic+real"], ["synthetic+real", "synthetic"])["dan"] == (
        "synthetic", "synthetic+real")  # in the order of the sources
    with pytest.raises(ValueError, match=r"extra_sources: \['real'\] are not adaptation sources"):
        comparison_plan(["dan"], ["synthetic"], ["real"])
    with pytest.raises(ValueError, match=r"leave no source to the methods \['dan'\]"):
        comparison_plan(["lmmd", "dan"], ["synthetic"], ["synthetic+real"])
    with pytest.raises(ValueError, match="method must be one of .*, got 'coral'"):
        comparison_plan(["coral"], ["synthetic"], ["synthetic"])


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory):
    from aims_lib.data import load_dataset

    ds = load_dataset(Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny" / "annotations.json")
    root = tmp_path_factory.mktemp("runs")
    plan = {"source_only": ("synthetic",), "lmmd": ("synthetic",), "mcc": ("synthetic",)}
    result = compare_methods(ds, root, get_profile("smoke"), plan, [0, 1], method_settings={"lmmd": {"adaptation_weight": 0.3}})
    return ds, root, plan, result


def test_every_cell_is_scored_over_its_seeds(tiny_comparison):
    _, root, plan, result = tiny_comparison
    assert result.seeds == (0, 1) and result.sources == ("synthetic",)
    assert result.cells["mcc"]["synthetic"].runs == ("image_coarse_synthetic_mcc", "image_coarse_synthetic_mcc_seed1")
    # the LMMD weight of notebook 02 names its runs and reaches their config
    assert result.cells["lmmd"]["synthetic"].runs[0] == "image_coarse_synthetic_lmmd_lambda0.3"
    assert json.loads((root / "image_coarse_synthetic_lmmd_lambda0.3" / "config.json").read_text())["adaptation_weight"] == 0.3
    assert result.oracle.runs == ("image_coarse_real_source_only", "image_coarse_real_source_only_seed1")
    for method in plan:
        c = result.cells[method]["synthetic"].accuracy
        assert c["seeds"] == [0, 1] and len(c["per_seed"]["top1"]) == 2 and c["top1"] == c["per_seed"]["top1"][0]
        assert c["top1_low"] <= c["top1"] <= c["top1_high"] and c["n"] == 2  # the fixture's 2 real test images
    assert set(result.curves("synthetic")) == {"source-only", "LMMD", "MCC"}
    assert "mcc" in result.curves("synthetic")["MCC"]["history"][0]
    assert set(result.metrics) == set(result.runs().values())  # every run's metrics, by its name
    runs = result.runs()  # seed by seed, the plan's methods, then the oracle
    assert list(runs)[:4] == [("coarse", "synthetic", m, 0) for m in plan] + [("coarse", "real", "source_only", 0)]
    assert runs["coarse", "synthetic", "mcc", 1] == "image_coarse_synthetic_mcc_seed1"
    assert [run_key(*key) for key in runs][:2] == ["coarse/synthetic/source_only/0", "coarse/synthetic/lmmd/0"]
    assert run_key("coarse", "synthetic+real", "lmmd") == "coarse/synthetic+real/lmmd"
    assert result.paper_rows() == {"synthetic": {"image": result.cells["source_only"]["synthetic"].accuracy,
                                                 "image_lmmd": result.cells["lmmd"]["synthetic"].accuracy},
                                   "real": {"image": result.oracle.accuracy}}


def test_each_method_is_compared_with_source_only_on_the_same_images(tiny_comparison):
    _, _, _, result = tiny_comparison
    base, mcc = result.cells["source_only"]["synthetic"], result.cells["mcc"]["synthetic"]
    assert base.vs_source_only is None and base.gap_closed is None
    vs = mcc.vs_source_only
    assert vs.name == "MCC vs source-only, coarse, synthetic" and vs.n == 2
    assert vs.difference == pytest.approx(mcc.accuracy["top1"] - base.accuracy["top1"], abs=0.01)
    gap = result.oracle.accuracy["top1"] - base.accuracy["top1"]
    assert mcc.gap_closed == (None if gap <= 0 else pytest.approx((mcc.accuracy["top1"] - base.accuracy["top1"]) / gap, abs=1e-3))
    # LMMD against source-only has one name, the paper's (notebook 02's Table 3 comparisons)
    lmmd = result.cells["lmmd"]["synthetic"].vs_source_only
    assert (lmmd.name, lmmd.a, lmmd.b) == ("LMMD vs source-only, coarse, synthetic", "source-only", "LMMD")
    assert lmmd.name in PAPER_COMPARISONS


def test_without_an_oracle_nothing_closes_a_gap(tiny_comparison):
    ds, root, _, result = tiny_comparison
    plan = {"source_only": ("synthetic",), "lmmd": ("synthetic",)}
    again = compare_methods(ds, root, get_profile("smoke"), plan, [0, 1], method_settings={"lmmd": {"adaptation_weight": 0.3}},
                            oracle=False)
    assert again.oracle is None and again.cells["lmmd"]["synthetic"].gap_closed is None
    assert again.cells["lmmd"]["synthetic"].vs_source_only == result.cells["lmmd"]["synthetic"].vs_source_only  # reused runs
    assert list(again.paper_rows()) == ["synthetic"] and ("coarse", "real", "source_only", 0) not in again.runs()


def test_finished_runs_are_reused(tiny_comparison):
    ds, root, plan, result = tiny_comparison
    stamps = {p: p.stat().st_mtime_ns for p in root.glob("*/outputs.npz")}
    again = compare_methods(ds, root, get_profile("smoke"), plan, [0, 1], method_settings={"lmmd": {"adaptation_weight": 0.3}})
    assert again.record("smoke", "b") == result.record("smoke", "b")
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/outputs.npz")} == stamps


def test_record_rows_and_results_check(tiny_comparison):
    _, _, _, result = tiny_comparison
    record = result.record("smoke", "test")
    json.dumps(record)  # what results.json keeps
    rows = table_rows(record)
    assert [(r["method"], r["source"]) for r in rows] == [
        ("source-only", "synthetic"), ("LMMD", "synthetic"), ("MCC", "synthetic"), ("source-only", "real (target oracle)")]
    assert rows[0]["vs source-only (points)"] == "–" and rows[2]["seeds"] == 2
    _check_uda_methods(record)
    broken = {**record, "cells": {**record["cells"], "mcc": {}}}
    with pytest.raises(ValueError, match="uda_methods.cells.mcc.synthetic is planned but missing"):
        _check_uda_methods(broken)
    with pytest.raises(ValueError, match=r"uda_methods lacks \['budget'\]"):
        _check_uda_methods({k: v for k, v in record.items() if k != "budget"})


def _cell(top1, low, high, diff=None, dlow=None, dhigh=None, gap=None):
    vs = None if diff is None else Comparison("x vs source-only", "source-only", "x", diff, dlow, dhigh, 0.02, 0, 0, 10)
    return Cell({"top1": top1, "top1_low": low, "top1_high": high, "macro": top1, "seeds": [0]}, ("r",), vs, gap)


def test_reading_names_the_best_method_and_whether_its_interval_excludes_zero():
    cells = {"source_only": {"synthetic": _cell(50.0, 43.0, 57.0)},
             "dann": {"synthetic": _cell(55.0, 48.0, 62.0, 5.0, -1.0, 11.0, 0.25)},
             "mcc": {"synthetic": _cell(60.0, 53.0, 67.0, 10.0, 4.0, 16.0, 0.5)}}
    result = MethodComparison("coarse", (0,), {m: ("synthetic",) for m in cells}, cells, _cell(70.0, 63.0, 77.0), {})
    assert result.reading() == ("synthetic: best MCC 60.0 % [53.0, 67.0], +10.0 points over source-only [4.0, 16.0] "
                                "(paired interval excludes 0; McNemar p = 0.020); closes 50% of the gap to the oracle")
    cells["mcc"]["synthetic"] = _cell(52.0, 45.0, 59.0, 2.0, -4.0, 8.0, None)
    assert "best DANN 55.0 %" in result.reading() and "includes 0: not distinguishable" in result.reading()
    cells["mcc"]["synthetic"] = _cell(55.0, 48.0, 62.0, 5.0, 0.5, 9.5, None)  # a tie: both named, each with its interval
    assert result.reading().splitlines() == [
        "synthetic: best DANN 55.0 % [48.0, 62.0], +5.0 points over source-only [-1.0, 11.0] (paired interval includes 0: "
        "not distinguishable from source-only; McNemar p = 0.020); closes 25% of the gap to the oracle",
        "synthetic: best MCC 55.0 % [48.0, 62.0], +5.0 points over source-only [0.5, 9.5] (paired interval excludes 0; "
        "McNemar p = 0.020)"]


def test_results_table_and_figure_show_every_cell():
    from aims_lib.plots import plot_method_comparison

    cells = {"source_only": {"synthetic": _cell(50.0, 43.0, 57.0), "synthetic+real": _cell(70.0, 63.0, 76.0)},
             "mcc": {"synthetic": _cell(60.0, 53.0, 67.0, 10.0, 4.0, 16.0, 0.5)}}
    plan = {"source_only": ("synthetic", "synthetic+real"), "mcc": ("synthetic",)}
    record = MethodComparison("coarse", (0,), plan, cells, _cell(70.0, 63.0, 77.0), {}).record("quick", "b")
    table = results_markdown({"data": "embedded", "profile": "quick", "table2": {}, "table3": {}, "uda_methods": record})
    assert "| MCC | synthetic | 60.0 | [53.0, 67.0] | 60.0 | +10.0 [4.0, 16.0] | 0.020 | 0.50 | 1 |" in table
    assert "| source-only | real (target oracle) | 70.0 | [63.0, 77.0] |" in table
    fig = plot_method_comparison(record, "t")
    heights = sorted(round(p.get_height(), 1) for p in fig.axes[0].patches)
    assert heights == [50.0, 60.0, 70.0, 70.0]


def test_training_curves_keep_one_colour_per_run_in_every_panel():
    """Source-only has no adaptation loss: the next run's line in that panel keeps the run's colour."""
    from aims_lib.plots import plot_training_curves

    hist = [{"epoch": 1, "ce": 1.0, "val_acc": 50.0}, {"epoch": 2, "ce": 0.5, "val_acc": 60.0}]
    runs = {"source-only": {"config": {"method": "source_only"}, "history": hist},
            "MCC": {"config": {"method": "mcc"}, "history": [{**h, "mcc": 0.3} for h in hist]}}
    fig = plot_training_curves(runs)
    ce, adaptation, val = (ax.get_lines() for ax in fig.axes)
    assert [line.get_label() for line in adaptation] == ["MCC"]
    assert adaptation[0].get_color() == val[1].get_color() != val[0].get_color()
    assert list(adaptation[0].get_ydata()) == [0.3, 0.3]


def test_lambda_sweep_trains_one_run_per_weight_and_chooses_on_val(monkeypatch, tmp_path):
    """The trainer and the runs' outputs replaced: weight 0 is the source-only run, the paper's weight
    keeps the LMMD run's plain name (notebook 02's, reused), every other weight gets its own."""
    from dataclasses import asdict

    import numpy as np

    from aims_lib.data import load_dataset
    from aims_lib.image_branch import comparison
    from aims_lib.image_branch.comparison import chosen_weight, lambda_sweep

    ds = load_dataset(Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny" / "annotations.json")
    test = ds.select("test", "real")
    assert [s.coarse_id for s in test] == [1, 3]
    val = {0.0: 40.0, 0.3: 70.0, 0.5: 70.0, 1.0: np.nan}
    configs = {}

    def fake_train(dataset, run_dir, cfg):
        configs[run_dir.name] = cfg
        return {"best_val_acc": val[cfg.adaptation_weight], "test_acc": 12.5, "best_epoch": 2}

    def fake_outputs(run_dir, samples):  # LMMD runs right on both test images, source-only on the first
        right = np.eye(4)[[1, 3]]
        return right if "lmmd" in run_dir.name else np.eye(4)[[1, 0]]

    monkeypatch.setattr(comparison, "train_image_branch", fake_train)
    monkeypatch.setattr(comparison, "predictions_of_run", fake_outputs)
    points = lambda_sweep(ds, tmp_path, get_profile("smoke"), [0.0, 0.3, 0.5, 1.0], "synthetic", 4, ramp="dsan")
    assert [p.run for p in points] == ["image_coarse_synthetic_source_only", "image_coarse_synthetic_lmmd_lambda0.3",
                                       "image_coarse_synthetic_lmmd", "image_coarse_synthetic_lmmd_lambda1"]
    assert [(c.method, c.adaptation_weight, c.seed, c.ramp) for c in configs.values()] == [
        ("source_only", 0.0, 4, "none"), ("lmmd", 0.3, 4, "dsan"), ("lmmd", 0.5, 4, "dsan"), ("lmmd", 1.0, 4, "dsan")]
    assert [p.test.top1 for p in points] == [50.0, 100.0, 100.0, 100.0] and points[0].test.n == 2
    assert points[1].record() == {"lambda": 0.3, "run": "image_coarse_synthetic_lmmd_lambda0.3", "val_top1": 70.0,
                                  "test_top1": 12.5, "test": asdict(points[1].test), "best_epoch": 2}
    row = points[0].row()
    assert row["real val"] == 40.0 and row["real test"] == 12.5 and row["real test macro"] == points[0].test.macro
    assert row["real test 95% CI"] == f"[{points[0].test.top1_low:.1f}, {points[0].test.top1_high:.1f}]"
    assert chosen_weight(points) == 0.3  # the first of the tie; weight 1's run has no val score
    with pytest.raises(ValueError, match="no run of the sweep has a real-val accuracy"):
        chosen_weight(points[3:])
