"""Merging datasets: one dataset from a real import and rendered images, inputs untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aims_lib.data import load_dataset
from aims_lib.data.import_syrip import import_syrip
from aims_lib.data.merge import data_kind, main, merge_datasets


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def real_import(syrip_tiny: Path, tmp_path: Path) -> Path:
    out = tmp_path / "syrip_aims"
    import_syrip(syrip_tiny / "annotations" / "person_keypoints_train_infant.json",
                 syrip_tiny / "images" / "train_infant", syrip_tiny / "aims_labels.csv", out, split="test", domain="real")
    return out


def test_merge_keeps_labels_splits_and_sources_and_never_touches_inputs(real_import: Path, aims_tiny: Path,
                                                                         tmp_path: Path) -> None:
    rendered = aims_tiny.parent
    before = {p: _digest(p) for p in (real_import, rendered)}
    merged = merge_datasets([real_import, rendered], tmp_path / "merged")
    assert {p: _digest(p) for p in (real_import, rendered)} == before

    real, synth = load_dataset(real_import), load_dataset(rendered)
    assert len(merged) == len(real) + len(synth)
    assert [s.image_id for s in merged.samples] == list(range(1, len(merged) + 1))
    assert len({s.file_name for s in merged.samples}) == len(merged)
    first = {s.file_name: s for s in merged.samples}
    for k, ds in enumerate((real, synth)):
        for s in ds.samples:
            m = first[f"{k}-{ds.root.name}/{s.file_name}"]
            assert (m.fine, m.coarse, m.domain, m.split) == (s.fine, s.coarse, s.domain, s.split)
            assert (m.keypoints_2d == s.keypoints_2d).all() and (m.bbox == s.bbox).all()
            assert (merged.root / m.file_name).read_bytes() == (ds.root / s.file_name).read_bytes()
    raw = {img["id"]: img for img in merged.raw["images"]}
    assert raw[len(real) + 1]["merged_from"] == [1, synth.samples[0].image_id]
    sources = merged.info["sources"]
    assert [Path(s["path"]).name for s in sources] == ["syrip_aims", "aims_tiny"]
    assert sources[0]["info"]["source"] == "import" and sources[1]["images"] == {"real": 8, "synthetic": 4}
    assert merged.info["source"] == "merged" and data_kind(merged.info) == "real"
    assert data_kind(synth.info) == "embedded" and data_kind(real.info) == "real"


def test_merge_of_embedded_sources_is_still_embedded(aims_tiny: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    merge_datasets([aims_tiny.parent], copy)
    assert data_kind(merge_datasets([aims_tiny.parent, copy], tmp_path / "twice").info) == "embedded"


def test_merge_refuses_to_write_into_a_source_and_repeated_sources(real_import: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlaps source"):
        merge_datasets([real_import], real_import / "merged")
    with pytest.raises(ValueError, match="given twice"):
        merge_datasets([real_import, real_import / "annotations.json"], tmp_path / "m")


def test_merge_rerun_replaces_a_stale_copy(real_import: Path, tmp_path: Path) -> None:
    out = tmp_path / "m"
    merged = merge_datasets([real_import], out)
    stale = merged.root / merged.samples[0].file_name
    stale.write_bytes(b"\0" * stale.stat().st_size)  # same size, other content
    merge_datasets([real_import], out)
    assert stale.read_bytes() == (real_import / load_dataset(real_import).samples[0].file_name).read_bytes()


def test_merge_cli_reports_counts_and_errors(real_import: Path, aims_tiny: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(real_import), str(aims_tiny.parent), "--out", str(tmp_path / "m")]) == 0
    assert "19 images from 2 sources" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "m2")]) == 2
    assert "dataset file not found" in capsys.readouterr().err
