"""Every notebook runs headlessly under papermill with the smoke profile and writes its outputs."""

import json
from pathlib import Path

import nbformat
import pytest

from aims_lib.reproduce import notebooks, run_notebooks

NOTEBOOKS = notebooks()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_is_committed_clean(nb: Path):
    book = nbformat.read(nb, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), "commit without outputs"
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = tagged[0].source
    for name in ("profile: str", "seed: int", "device: str", "reports_dir: str"):
        assert name in src, f"parameters cell lacks {name}"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    params = {"profile": "smoke", "seed": 0, "device": "cpu", "reports_dir": str(root / "reports"),
              "data_dir": str(root / "data"), "workers": 2}
    walls = run_notebooks(params, root / "reports")
    return root, walls


def test_dataset_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "01_dataset_construction" in walls
    assert (reports / "01_dataset_construction.ipynb").is_file()
    assert (reports / "01_dataset_construction.html").is_file()
    for fig in ("01_shape_space", "01_gallery_synthetic", "01_gallery_real", "01_keypoints_real",
                "01_skeletons_3d", "01_histograms"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = json.loads((reports / "01_dataset.json").read_text())
    assert record["data"] == "embedded" and record["counts"]["synthetic/train"] == 48
    assert set(record["domain_gap"]) >= {"synthetic_accuracy", "real_accuracy", "gap"}
    assert (root / "data" / "annotations.json").is_file()
