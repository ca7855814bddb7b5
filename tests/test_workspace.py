"""The notebooks' context: which dataset, reports folder and label a run works with, the
rendering + merging that gives a real-only import its synthetic domain, and the records."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data import load_dataset
from aims_lib.data.import_syrip import import_syrip
from aims_lib.profiles import embedded_data_dir
from aims_lib.workspace import has_synthetic_images, notebook_context, prepare_dataset, write_record


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def real_only(syrip_tiny: Path, tmp_path: Path) -> Path:
    out = tmp_path / "data" / "syrip_aims"
    import_syrip(syrip_tiny / "annotations" / "person_keypoints_train_infant.json",
                 syrip_tiny / "images" / "train_infant", syrip_tiny / "aims_labels.csv", out, domain="real")
    return out


def test_embedded_data_and_a_dataset_with_synthetic_images_are_used_as_they_are(aims_tiny: Path, tmp_path: Path) -> None:
    ctx = notebook_context("smoke", 3, "cpu", reports_dir=tmp_path / "r")
    assert ctx.data_path == embedded_data_dir("smoke", 3) and ctx.user_data is None and ctx.synthetic_path is None
    assert ctx.fig_dir.is_dir() and ctx.run_root == tmp_path / "r" / "runs" and ctx.device == "cpu"
    ctx = notebook_context("smoke", 0, "cpu", reports_dir=tmp_path / "r", data_dir=aims_tiny.parent)
    assert has_synthetic_images(aims_tiny.parent) and ctx.data_path == aims_tiny.parent.resolve()
    assert ctx.data_label(ctx.dataset()) == "embedded benchmark" and prepare_dataset(ctx) is None


def test_reports_folder_names_the_data_and_the_body(real_only: Path) -> None:
    from aims_lib.files import REPO

    ctx = notebook_context("quick", 1, "cpu", data_dir=real_only, smil_model="/x/smil_web.pkl")
    assert ctx.out_dir == REPO / "reports" / "quick" / "syrip_aims-smil_web-seed1"
    assert ctx.synthetic_path == real_only.parent / "syrip_aims-synthetic-quick-smil_web-seed1"
    assert ctx.data_path == real_only.parent / "syrip_aims+synthetic-quick-smil_web-seed1"
    with pytest.raises(FileNotFoundError, match="run notebook 01 first"):
        ctx.dataset()


def test_a_real_only_import_gets_rendered_synthetic_images_beside_it(real_only: Path, tmp_path: Path) -> None:
    before = _digest(real_only)
    assert not has_synthetic_images(real_only)
    ctx = notebook_context("smoke", 0, "cpu", reports_dir=tmp_path / "r", data_dir=real_only, n_synthetic=6, render_size=64)
    summary = prepare_dataset(ctx)
    assert summary is not None and summary["images"] == 6
    assert _digest(real_only) == before  # the import is never written
    ds = ctx.dataset()
    real = load_dataset(real_only)
    assert len(ds.select(domain="synthetic")) == 6 and len(ds.select(domain="real")) == len(real)
    assert sorted(s.split for s in ds.select(domain="real")) == sorted(s.split for s in real.samples)
    assert ctx.data_label(ds) == "real data" and ctx.synthetic_body == "procedural"
    assert [Path(s["path"]) for s in ds.info["sources"]] == [real_only, ctx.synthetic_path]
    again = prepare_dataset(ctx)  # resumes: nothing rendered twice
    assert again is not None and again["made_now"] == 0 and len(ctx.dataset()) == len(ds)


def test_a_data_dir_without_a_dataset_gets_the_embedded_benchmark(tmp_path: Path) -> None:
    ctx = notebook_context("smoke", 0, "cpu", reports_dir=tmp_path / "r", data_dir=tmp_path / "new",
                           n_synthetic=4, n_real=12, render_size=64)
    assert ctx.generated and ctx.data_path == (tmp_path / "new").resolve()
    prepare_dataset(ctx)
    again = notebook_context("smoke", 0, "cpu", reports_dir=tmp_path / "r", data_dir=tmp_path / "new",
                             n_synthetic=4, n_real=12, render_size=64)
    assert again.generated and again.data_label(again.dataset()) == "embedded benchmark"


def test_a_record_has_no_nan_and_no_numpy_types(tmp_path: Path) -> None:
    record = {"top1": np.float64(62.5), "n": np.int64(8), "failed": np.bool_(True), "nan": math.nan,
              "curve": [{"epoch": 1, "gain": float("inf")}, {"epoch": 2, "gain": np.float32(0.5)}],
              "interval": (np.float32(-np.inf), 1.5), "per_class": np.array([[50.0, np.nan], [1.0, 2.0]]),
              "by_seed": {np.int64(3): "x"}, "label": None}
    path = write_record(tmp_path / "reports", "09_test", record)
    assert path == tmp_path / "reports" / "09_test.json" and [p.name for p in path.parent.iterdir()] == ["09_test.json"]
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"top1": 62.5, "n": 8, "failed": True, "nan": None,
                                "curve": [{"epoch": 1, "gain": None}, {"epoch": 2, "gain": 0.5}],
                                "interval": [None, 1.5], "per_class": [[50.0, None], [1.0, 2.0]],
                                "by_seed": {"3": "x"}, "label": None}
    assert record["nan"] is not None and np.isnan(record["per_class"][0, 1])  # the caller's record is left as it is


def test_a_record_goes_to_the_reports_folder_of_a_context(tmp_path: Path) -> None:
    ctx = notebook_context("smoke", 0, "cpu", reports_dir=tmp_path / "r")
    assert write_record(ctx, "01_dataset", {"seed": 0}) == ctx.out_dir / "01_dataset.json"
    assert json.loads((ctx.out_dir / "01_dataset.json").read_text()) == {"seed": 0}
    with pytest.raises(TypeError, match="not JSON serializable"):  # no silent str() of other objects
        write_record(ctx, "01_dataset", {"path": tmp_path})
    assert json.loads((ctx.out_dir / "01_dataset.json").read_text()) == {"seed": 0}  # the old record is kept
