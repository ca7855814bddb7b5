"""The results.json check: the keys it requires come from the record types (aims_lib.records)."""

import pytest

from aims_lib.records import Results, keys
from aims_lib.reproduce import RESULT_KEYS, check_results, collect_results


def test_result_keys_come_from_the_types():
    assert RESULT_KEYS["table2"] == {"coarse": ("image", "image_lmmd", "pose"), "fine": ("image", "image_lmmd", "pose", "full")}
    assert RESULT_KEYS["comparisons"] == ("name", "a", "b", "difference", "low", "high", "p", "a_only", "b_only", "n")
    optional = set(keys(Results)) - set(RESULT_KEYS["results"])  # a notebook that has not run leaves these out
    assert optional == {"dry_run", "gap_closed", "uda_methods", "card", "auto_box", "calibration"}


def test_results_of_a_folder_without_records_have_every_key_and_no_numbers(tmp_path):
    results = collect_results(tmp_path, {"profile": "smoke", "seed": 0, "device": "cpu"}, {})
    assert list(results) == list(keys(Results))
    check_results(results)
    assert results["table2"]["fine"] == {"image": None, "image_lmmd": None, "pose": None, "full": None}
    assert results["uda_methods"] is None and results["card"] is None and results["device"] == "cpu"


def test_check_results_names_the_bad_key():
    detail = {"top1": 50.0, "top1_low": 43.0, "top1_high": 57.0, "macro": 48.0, "macro_low": 40.0, "macro_high": 55.0,
              "n": 198, "seeds": [0], "per_seed": {"top1": [50.0], "macro": [48.0]},
              "over_seeds": {"mean": 50.0, "sd": None, "n_seeds": 1}}
    comparison = {"name": "LMMD vs source-only, coarse, synthetic", "a": "source-only", "b": "LMMD", "difference": 3.0,
                  "low": -2.0, "high": 8.0, "p": 0.3, "a_only": 10, "b_only": 16, "n": 198}
    good = {"profile": "smoke", "seed": 0, "device": "cpu", "data": "embedded", "synthetic_body": "procedural", "wall_seconds": {}, "seeds": [0],
            "machine": {"cpu": "x"},
            "table2": {g: dict.fromkeys(k, 50.0) for g, k in RESULT_KEYS["table2"].items()},
            "table3": {g: dict.fromkeys(k, 50.0) for g, k in RESULT_KEYS["table3"].items()},
            "accuracy": {t: {g: dict.fromkeys(k, detail) for g, k in RESULT_KEYS[t].items()} for t in ("table2", "table3")},
            "comparisons": [comparison],
            "smplify": {"fits_per_second": 10.0, "pa_mpjpe_gt2d": 0.05, "pa_mpjpe_estimated2d": 0.1},
            "pose2d": {"ap": 0.3, "pck05": 0.5, "pck10": 0.8, "pck05_interval": [0.45, 0.55], "pck10_interval": [0.75, 0.85],
                       "config": "lite0_160x160.py"},
            "image_backbone": {"name": "efficientnet_lite0", "weights": "ImageNet"}}
    check_results(good)
    accuracy = {mode: {"fine": detail, "coarse": detail} for mode in ("annotated", "automatic")}
    auto_box = {"n": 198, "accuracy": accuracy, "top1": {}, "comparisons": [], "no_infant": {}, "automatic_iou": {}}
    interval = {"value": 0.05, "low": 0.04, "high": 0.09}
    model = {"name": "full model", "level": "fine", "n": 198, "bins": 15, "ece": {"before": interval, "after": interval},
             "nll": {"before": interval, "after": interval}, "ece_if_calibrated": {}, "aurc": {}}
    calibration = {"temperatures": {}, "pooling": {}, "models": {"full_model": model}, "pooled_vs_product": {},
                   "conformal": {"coarse": {"coverage": 0.9}, "fine": {"coverage": 0.86}}, "answers": {}}
    check_results({**good, "auto_box": auto_box, "calibration": calibration})
    with pytest.raises(ValueError, match="auto_box lacks"):
        check_results({**good, "auto_box": {k: v for k, v in auto_box.items() if k != "automatic_iou"}})
    with pytest.raises(ValueError, match="calibration.models.full_model.nll.after"):
        bad = {**model, "nll": {"before": interval, "after": {"value": 0.2, "low": 0.04, "high": 0.09}}}
        check_results({**good, "calibration": {**calibration, "models": {"full_model": bad}}})
    with pytest.raises(ValueError, match="coverage"):
        check_results({**good, "calibration": {**calibration, "conformal": {"coarse": {"coverage": 90}, "fine": {"coverage": 0.9}}}})
    with pytest.raises(ValueError, match="table3.synthetic.image_lmmd"):
        check_results({**good, "table3": {**good["table3"], "synthetic": {"image": 50.0, "image_lmmd": 150.0}}})
    with pytest.raises(ValueError, match="missing key 'smplify'"):
        check_results({k: v for k, v in good.items() if k != "smplify"})
    with pytest.raises(ValueError, match="missing image_backbone.weights"):
        check_results({**good, "image_backbone": {"name": "efficientnet_lite0"}})
    with pytest.raises(ValueError, match="data must be"):
        check_results({**good, "data": "synthetic"})
    with pytest.raises(ValueError, match="pose2d.pck05 must be a fraction"):
        check_results({**good, "pose2d": {**good["pose2d"], "pck05": 50.0}})
    with pytest.raises(ValueError, match=r"comparisons\[0\] \(LMMD vs source-only, coarse, synthetic\) lacks \['p'\]"):
        check_results({**good, "comparisons": [{k: v for k, v in comparison.items() if k != "p"}]})
    bad_detail = {**good["accuracy"]["table3"], "synthetic": {"image": {**detail, "top1": 60.0}, "image_lmmd": detail}}
    with pytest.raises(ValueError, match="accuracy.table3.synthetic.image: top1 60.0 outside its interval"):
        check_results({**good, "accuracy": {**good["accuracy"], "table3": bad_detail}})
    with pytest.raises(ValueError, match="missing pose2d.config"):
        check_results({**good, "pose2d": {k: v for k, v in good["pose2d"].items() if k != "config"}})
