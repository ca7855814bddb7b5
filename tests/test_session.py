"""The per-infant session report (aims_lib.session) with a fake predictor (conftest's
``fake_predictor``, ``photo`` and ``predictions``), and the demo session that the generator renders
(aims_lib.synth.demo_session)."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aims_lib import taxonomy
from aims_lib.session.cli import main, make_report
from aims_lib.session.frames import (
    InputFrame, SessionInputError, expected_frames, iter_frames, open_input, sample_at_rate,
)
from aims_lib.session.report import CSV_COLUMNS, check_outputs, timeline_png, timeline_points
from aims_lib.session.summary import (
    CALIBRATED_NOTE, UNCALIBRATED_NOTE, FrameRecord, coarse_answer, fine_answer, plain_summary, records_from_predictions,
    summarise, trained_on_rendered, training_data,
)

# ----------------------------------------------------------------------------- helpers


def save_photo(path: Path, image: np.ndarray, **kwargs) -> Path:
    Image.fromarray(image).save(path, **kwargs)
    return path


def make_video(path: Path, frames: int, fps: int, size: tuple[int, int] = (48, 64), rotation: int = 0) -> Path:
    """A video whose frame i is a flat grey of level 8 i (so a test can tell which frames it got)."""
    import av

    height, width = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        if rotation:
            stream.set_display_rotation(rotation)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 8 * i, dtype=np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def photos(tmp_path: Path, photo) -> Path:
    """Four photos: two plain, one stored sideways with EXIF orientation 6, one unreadable."""
    folder = tmp_path / "photos"
    folder.mkdir()
    save_photo(folder / "a_supine.png", photo(taxonomy.FINE.index("Supine Lying")))
    stored = photo(taxonomy.FINE.index("Sitting w/o Support"), size=(20, 40))  # 20 rows, 40 columns
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    save_photo(folder / "b_rotated.jpg", stored, exif=exif, quality=95)
    (folder / "c_broken.jpg").write_bytes(b"not a jpeg at all")
    save_photo(folder / "d_unsure.png", photo(taxonomy.FINE.index("Standing"), answer="uncertain"))
    (folder / "notes.txt").write_text("not a photo: ignored")
    return folder


# ----------------------------------------------------------------------------- input


def test_photo_folder_upright_and_unreadable_reported(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_predictor
) -> None:
    predictor = fake_predictor()
    summary = make_report(open_input(photos), predictor, tmp_path / "out" / "report.html", run_name="fake")
    # a.png as stored; b_rotated.jpg upright: 40 rows, 20 columns (its stored pixels are 20 x 40)
    assert predictor.shapes == [(20, 40, 3), (40, 20, 3), (20, 40, 3)]
    assert summary["frames"] == 4 and summary["predicted"] == 3
    assert [u["source"] for u in summary["unreadable"]] == ["c_broken.jpg"]
    assert "c_broken.jpg" in capsys.readouterr().err
    html = (tmp_path / "out" / "report.html").read_text()
    unreadable = html[html.index("Unreadable files"):]
    assert "c_broken.jpg" in unreadable[:unreadable.index("</ul>")]
    rows = read_csv(tmp_path / "out" / "report.csv")
    assert [r["source"] for r in rows] == ["a_supine.png", "b_rotated.jpg", "c_broken.jpg", "d_unsure.png"]
    assert rows[2]["error"] and rows[2]["needs_review"] == "True" and rows[1]["fine"] == "Sitting w/o Support"


def test_video_sampled_by_timestamps(tmp_path: Path, fake_predictor) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=30, fps=10)  # 3 s at 10 fps
    frames = list(iter_frames(open_input(video), fps=2.0))
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # the kept frames are 0, 5, 10, ...: grey levels 0, 40, 80, ... (lossy codec: within a few levels)
    assert [float(f.image.mean()) for f in frames] == pytest.approx([0, 40, 80, 120, 160, 200], abs=4)
    assert expected_frames(open_input(video), 2.0) == 6
    summary = make_report(open_input(video), fake_predictor(), tmp_path / "clip.html", fps=2.0)
    rows = read_csv(tmp_path / "clip.csv")
    assert summary["frames"] == 6 and [float(r["time_s"]) for r in rows] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    assert {r["source"] for r in rows} == {"clip.mp4"} and "sampled at 2 frames per second" in (tmp_path / "clip.html").read_text()


def test_video_display_rotation_applied(tmp_path: Path) -> None:
    video = make_video(tmp_path / "phone.mp4", frames=4, fps=2, size=(32, 64), rotation=90)
    frames = list(iter_frames(open_input(video), fps=2.0))
    assert len(frames) == 4 and all(f.image.shape == (64, 32, 3) for f in frames)


def test_sample_at_rate_keeps_the_first_frame_at_or_after_each_step() -> None:
    times = [0.0, 0.3, 0.49, 0.51, 0.9, 1.2, 2.6, 2.7]
    kept = [t for t, _ in sample_at_rate(((t, None) for t in times), fps=2.0)]
    assert kept == [0.0, 0.51, 1.2, 2.6]


@pytest.mark.parametrize("case", ["empty", "no_photos", "missing", "not_video"])
def test_bad_inputs_exit_2_naming_the_path(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / case
    if case in ("empty", "no_photos"):
        target.mkdir()
        if case == "no_photos":
            (target / "readme.txt").write_text("x")
    elif case == "not_video":
        target = tmp_path / "report.pdf"
        target.write_bytes(b"%PDF")
    with pytest.raises(SystemExit) as exit_info:
        main([str(target), "--run", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert exit_info.value.code == 2
    assert str(target) in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_video_without_frames_or_undecodable_is_an_input_error(tmp_path: Path) -> None:
    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 32, 32
    with pytest.raises(SessionInputError, match=re.escape(str(empty))):
        open_input(empty)
    garbage = tmp_path / "garbage.mov"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(SessionInputError, match="garbage.mov"):
        open_input(garbage)


def test_outputs_never_overwrite_an_input(photos: Path, tmp_path: Path) -> None:
    checked = open_input(photos)
    link = tmp_path / "report.html"
    link.symlink_to(photos / "a_supine.png")
    with pytest.raises(ValueError, match="is the input"):
        check_outputs(link, checked)
    with pytest.raises(ValueError, match=r"\.html"):
        check_outputs(tmp_path / "report.csv", checked)
    video = make_video(tmp_path / "clip.mp4", frames=2, fps=2)
    (tmp_path / "clip.json").symlink_to(video)  # the JSON beside clip.html would write through it
    with pytest.raises(ValueError, match="clip.json is the input"):
        check_outputs(tmp_path / "clip.html", open_input(video))
    assert (photos / "a_supine.png").read_bytes()[:4] == b"\x89PNG"  # untouched


# ----------------------------------------------------------------------------- outputs


def test_outputs_beside_each_other_with_consistent_counts(photos: Path, tmp_path: Path, fake_predictor) -> None:
    out = tmp_path / "reports" / "infant.html"
    summary = make_report(open_input(photos), fake_predictor(), out, run_name="run", age_months=6)
    html, rows = out.read_text(), read_csv(out.with_suffix(".csv"))
    document = json.loads(out.with_suffix(".json").read_text())
    assert sorted(p.name for p in out.parent.iterdir()) == ["infant.csv", "infant.html", "infant.json"]
    assert len(rows) == len(document["frames"]) == document["summary"]["frames"] == summary["frames"] == 4
    assert sum(r["needs_review"] == "True" for r in rows) == document["summary"]["needs_review"] == len(summary["review"]) == 2
    assert document["summary"]["age_months"] == 6 and "Age given: 6 months" in html
    assert "percentile" in html and UNCALIBRATED_NOTE in html
    assert all(r["source"] in html for r in rows)
    # self-contained: no URL other than embedded data, no script
    assert not re.findall(r"""(?:src|href)\s*=\s*["'](?!data:)""", html)
    assert "http://" not in re.sub(r"data:[^\"']+", "", html) and "https://" not in re.sub(r"data:[^\"']+", "", html)


def test_calibrated_run_drops_the_raw_softmax_note(photos: Path, tmp_path: Path, fake_predictor) -> None:
    out = tmp_path / "r.html"
    make_report(open_input(photos), fake_predictor(calibrated=True), out)
    assert UNCALIBRATED_NOTE not in out.read_text() and CALIBRATED_NOTE in out.read_text()


def test_a_failing_frame_is_isolated(tmp_path: Path, fake_predictor, photo) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    for k in range(3):
        save_photo(folder / f"{k}.png", photo(k + 4))
    summary = make_report(open_input(folder), fake_predictor(fail_on_red=20 * 5), tmp_path / "r.html")
    assert summary["predicted"] == 2
    assert [u["source"] for u in summary["unreadable"]] == ["1.png"] and "prediction failed" in summary["unreadable"][0]["error"]


def test_html_escapes_file_names(tmp_path: Path, fake_predictor, photo) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    save_photo(folder / "x<script>alert(1)<.png", photo(1, answer="uncertain"))
    out = tmp_path / "r.html"
    make_report(open_input(folder), fake_predictor(), out)
    html = out.read_text()
    assert "<script" not in html
    assert "x&lt;script&gt;alert(1)&lt;.png" in html


def test_main_end_to_end_reads_the_runs_training_data(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_predictor
) -> None:
    from aims_lib.predict import AIMSPosePredictor

    run = tmp_path / "run"
    run.mkdir()
    (run / "predictor.json").write_text(json.dumps({"format": "aims-predictor/1", "extra": {"data": "embedded benchmark"}}))
    monkeypatch.setattr(AIMSPosePredictor, "load", classmethod(lambda cls, run_dir, device="cpu": fake_predictor()))
    out = tmp_path / "r.html"
    assert main([str(photos), "--run", str(run), "--out", str(out), "--age-months", "9"]) == 0
    html = out.read_text()
    assert "embedded benchmark" in html and "screening aid, not a diagnosis" in html and "movement" in html
    with pytest.raises(SystemExit) as exit_info:
        main([str(photos), "--run", str(run), "--out", str(tmp_path / "r.txt")])
    assert exit_info.value.code == 2


def test_no_frame_predicted_exits_1_and_still_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_predictor
) -> None:
    from aims_lib.predict import AIMSPosePredictor

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "only.jpg").write_bytes(b"")
    monkeypatch.setattr(AIMSPosePredictor, "load", classmethod(lambda cls, run_dir, device="cpu": fake_predictor()))
    out = tmp_path / "r.html"
    assert main([str(folder), "--run", str(tmp_path), "--out", str(out)]) == 1
    assert "only.jpg" in out.read_text() and len(read_csv(out.with_suffix(".csv"))) == 1


# ----------------------------------------------------------------------------- summary functions


def rec(index: int, fine: str, prob: float, kind: str = "fine", *, answer: str | None = None, review: bool = False,
        no_infant: bool = False, error: str = "") -> FrameRecord:
    """A hand-made frame record whose answer commits to ``fine`` and its posture ("fine"), to the
    posture only ("coarse_only") or to nothing ("uncertain"), or finds no infant; ``answer``
    overrides the answer's text."""
    if error:
        return FrameRecord(index, f"{index}.png", None, answer="not predicted", review_reason=error, error=error)
    coarse = taxonomy.FINE_TO_COARSE[fine]
    text, committed = {"fine": (f"{fine} ({coarse})", (coarse, fine)),
                       "coarse_only": (f"{coarse}, fine pose uncertain", (coarse, "")),
                       "uncertain": (f"uncertain: {coarse} or Prone", ("", ""))}[kind]
    if no_infant:
        text, committed = "no infant found", ("", "")
    text = answer if answer is not None else text
    return FrameRecord(index, f"{index}.png", 0.5 * index, coarse=coarse, coarse_prob=prob, fine=fine, fine_prob=prob,
                       answer=text, answer_coarse=committed[0], answer_fine=committed[1], needs_review=review or no_infant,
                       no_infant=no_infant, review_reason=text if review or no_infant else "")


def test_coarse_and_fine_answers_are_the_committed_labels() -> None:
    arm = rec(0, "Sitting w/ Arm Support", 0.9)
    assert coarse_answer(arm) == "Sitting" and fine_answer(arm) == "Sitting w/ Arm Support"
    coarse_only = rec(1, "Sitting w/o Support", 0.4, "coarse_only")  # calibrated: no review
    assert coarse_answer(coarse_only) == "Sitting" and fine_answer(coarse_only) is None
    torn = rec(2, "Prone Lying", 0.4, "uncertain", review=True)
    assert coarse_answer(torn) is None and fine_answer(torn) is None
    nobody = rec(3, "Standing", 0.3, no_infant=True)
    assert coarse_answer(nobody) is None and fine_answer(nobody) is None
    # the answer's text is never parsed: the structured labels decide, whatever the wording
    assert fine_answer(rec(4, "Four-Point Standing", 0.8, answer="Vierfüßlerstand")) == "Four-Point Standing"
    assert fine_answer(rec(5, "Standing", 0.8, "coarse_only", answer="Standing (Standing)")) is None
    assert coarse_answer(rec(6, "Standing", 0.8, "uncertain", answer="Standing (Standing)")) is None
    # an error or no-infant frame commits to nothing even if the fields say otherwise
    stray = FrameRecord(7, "7.png", None, answer_coarse="Sitting", answer_fine="Sitting w/o Support", no_infant=True)
    assert coarse_answer(stray) is None and fine_answer(stray) is None
    broken = FrameRecord(8, "8.png", None, answer_coarse="Sitting", answer_fine="Sitting w/o Support", error="x")
    assert coarse_answer(broken) is None and fine_answer(broken) is None


def test_records_take_the_committed_labels(photo, predictions) -> None:
    frames = [InputFrame(f"{k}.png", None, photo(0)) for k in range(4)]
    fine_probs = np.full((4, 12), 0.02)
    fine_probs[:, taxonomy.fine_id("Standing")] = 0.5  # the most likely fine pose ...
    fine_probs[:, taxonomy.fine_id("Sitting w/o Support")] = 0.3  # ... but the first answer commits to this one
    coarse_probs = fine_probs @ np.eye(4)[list(taxonomy.FINE_TO_COARSE_ID)]
    pred = predictions(
        coarse=["Standing"] * 4, coarse_probs=coarse_probs, fine=["Standing"] * 4, fine_probs=fine_probs,
        smplify_failed=np.array([False, False, True, False]), no_infant=np.array([False, False, False, True]),
        calibrated=True,
        answer=["Sitzen ohne Stütze", "uncertain: Standing or Sitting", "Sitting, fine pose uncertain", "no infant found"],
        answer_coarse=["Sitting", None, "Sitting", None], answer_fine=["Sitting w/o Support", None, None, None],
        needs_review=np.array([False, True, True, True]),
        review_reason=["", "uncertain: Standing or Sitting", "3D fit failed", "no keypoint above 0.3"],
    )
    records = records_from_predictions(list(enumerate(frames, start=10)), pred)
    assert [r.index for r in records] == [10, 11, 12, 13]
    assert [(r.answer_coarse, r.answer_fine) for r in records] == [("Sitting", "Sitting w/o Support"), ("", ""),
                                                                   ("Sitting", ""), ("", "")]
    assert (records[0].fine, records[0].fine_prob, records[0].coarse) == ("Sitting w/o Support", 0.3, "Sitting")
    assert fine_answer(records[0]) == "Sitting w/o Support"  # from the field, not the (German) text
    assert (records[1].fine, records[1].coarse) == ("Standing", "Standing")  # no answer: the most likely labels
    assert (records[2].coarse, records[2].fine, records[2].review_reason) == ("Sitting", "Standing", "3D fit failed")
    assert records[2].coarse_prob == round(float(coarse_probs[0, taxonomy.coarse_id("Sitting")]), 4)
    assert records[2].smplify_failed and coarse_answer(records[2]) == "Sitting" and fine_answer(records[2]) is None
    assert records[3].no_infant and coarse_answer(records[3]) is None
    assert set(asdict(records[0])) == set(CSV_COLUMNS)


def test_report_files_carry_the_committed_labels(tmp_path: Path, photo, fake_predictor) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    sitting = taxonomy.FINE.index("Sitting w/ Arm Support")
    save_photo(folder / "1.png", photo(sitting))
    save_photo(folder / "2.png", photo(sitting, answer="coarse_only"))
    save_photo(folder / "3.png", photo(sitting, answer="uncertain"))
    save_photo(folder / "4.png", photo(sitting, no_infant=True))
    out = tmp_path / "r.html"
    summary = make_report(open_input(folder), fake_predictor(calibrated=True), out)
    rows = read_csv(out.with_suffix(".csv"))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["answer_coarse"], r["answer_fine"]) for r in rows] == [
        ("Sitting", "Sitting w/ Arm Support"), ("Sitting", ""), ("", ""), ("", "")]
    frames = json.loads(out.with_suffix(".json").read_text())["frames"]
    assert [(f["answer_coarse"], f["answer_fine"]) for f in frames] == [(r["answer_coarse"], r["answer_fine"]) for r in rows]
    # the coarse-only frame counts for Sitting's share but for no fine pose; the uncertain one for neither
    assert summary["answered"] == 2 and {s["coarse"]: s["frames"] for s in summary["coarse_shares"]}["Sitting"] == 2
    assert [(o["fine"], o["frames"]) for o in summary["fine_observed"]] == [("Sitting w/ Arm Support", 1)]
    assert [r["index"] for r in summary["review"]] == [2, 3]


def test_summarise_shares_best_examples_and_review() -> None:
    records = [
        rec(0, "Supine Lying", 0.7), rec(1, "Supine Lying", 0.9), rec(2, "Supine Lying", 0.9),
        rec(3, "Sitting w/o Support", 0.6, "coarse_only", review=True),
        rec(4, "Sitting w/o Support", 0.8), rec(5, "Prone Lying", 0.5, "uncertain", answer="uncertain: Prone or Supine", review=True),
        rec(6, "Standing", 0.99, no_infant=True), rec(7, "Standing", 0.0, error="7.png: broken"),
    ]
    summary = summarise(records, calibrated=True, age_months=None, data="real data")
    assert summary["frames"] == 8 and summary["predicted"] == 7 and summary["answered"] == 5
    # the coarse-only frame 3 counts for Sitting but for no fine pose; the uncertain frame 5 for neither
    assert {s["coarse"]: s["frames"] for s in summary["coarse_shares"]} == {"Prone": 0, "Supine": 3, "Sitting": 2, "Standing": 0}
    assert [s["share"] for s in summary["coarse_shares"]] == [0.0, 0.6, 0.4, 0.0]
    assert summary["majority"] == "Supine"
    observed = {o["fine"]: o for o in summary["fine_observed"]}
    assert list(observed) == ["Supine Lying", "Sitting w/o Support"]  # taxonomy order; Standing only without an infant
    assert observed["Supine Lying"]["frames"] == 3 and observed["Supine Lying"]["best"]["index"] == 1  # earliest of the ties
    assert observed["Sitting w/o Support"]["frames"] == 1 and observed["Sitting w/o Support"]["best"]["fine_prob"] == 0.8
    assert [r["index"] for r in summary["review"]] == [3, 5, 6, 7]
    assert [r["reason"] for r in summary["review"]] == ["Sitting, fine pose uncertain", "uncertain: Prone or Supine",
                                                       "no infant found", "7.png: broken"]
    assert [u["source"] for u in summary["unreadable"]] == ["7.png"] and summary["no_infant"] == 1
    assert summary["age_note"] is None and summary["confidence_note"] == CALIBRATED_NOTE
    assert any("The run says the model was trained on: real data" in line for line in summary["limitations"])
    lines = plain_summary(summary, "video")
    assert lines[0].startswith("8 video frames") and "supine 60%" in lines[1]


def test_summarise_without_answers_and_training_data_sentences(tmp_path: Path) -> None:
    summary = summarise([rec(0, "Standing", 0.2, no_infant=True), rec(1, "Standing", 0.9, "uncertain", review=True)],
                                calibrated=False, age_months=4.5)
    assert summary["answered"] == 0 and summary["majority"] is None and summary["fine_observed"] == []
    assert all(s["share"] is None for s in summary["coarse_shares"])
    assert "4.5 months" in summary["age_note"] and "rendered" in " ".join(summary["limitations"])
    assert training_data(tmp_path) is None
    (tmp_path / "predictor.json").write_text(json.dumps({"extra": {"data": "DRY RUN (numbers meaningless), embedded benchmark"}}))
    assert trained_on_rendered(training_data(tmp_path))
    assert not trained_on_rendered("real data")


def test_timeline_places_frames_by_their_committed_labels() -> None:
    records = [rec(0, "Supine Lying", 0.7), rec(1, "Sitting w/o Support", 0.6, "coarse_only"),
               rec(2, "Prone Lying", 0.5, "uncertain", review=True), rec(3, "Standing", 0.3, no_infant=True),
               rec(4, "Standing", 0.0, error="x")]
    points = timeline_points(records, "video")
    assert [(p.x, p.row, p.fine, p.review) for p in points] == [
        (0.0, taxonomy.COARSE.index("Supine"), "Supine Lying", False),
        (0.5, taxonomy.COARSE.index("Sitting"), None, False),  # its posture, grey
        (1.0, -1, None, True), (1.5, -1, None, True),  # no answer
    ]
    assert [p.x for p in timeline_points(records, "photos")] == [0, 1, 2, 3]
    png = timeline_png(records, "video")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and Image.open(io.BytesIO(png)).size[0] > 500


# ----------------------------------------------------------------------------- the demo session


def test_demo_segments_cover_the_sequence() -> None:
    from aims_lib.synth.demo_session import DEFAULT_SEQUENCE, segments

    assert segments(DEFAULT_SEQUENCE, 24) == [(c, 3) for c in DEFAULT_SEQUENCE]
    short = segments(DEFAULT_SEQUENCE, 4)
    assert [c for c, _ in short][0] == DEFAULT_SEQUENCE[0] and short[-1] == (DEFAULT_SEQUENCE[-1], 1)
    assert [taxonomy.FINE_TO_COARSE[c] for c, _ in short] == ["Supine", "Prone", "Sitting", "Standing"]
    assert sum(n for _, n in segments(DEFAULT_SEQUENCE, 11)) == 11
    with pytest.raises(ValueError):
        segments(DEFAULT_SEQUENCE, 0)


def test_demo_session_folder_video_and_labels_agree(tmp_path: Path) -> None:
    from aims_lib.synth.demo_session import render_demo_session

    demo = render_demo_session(tmp_path / "demo", seed=1, frames=4, fps=2.0, image_size=96)
    labels = read_csv(demo.labels)
    pngs = sorted(demo.folder.glob("*.png"))
    assert [p.name for p in pngs] == [r["file"] for r in labels] and len(labels) == 4
    assert [r["coarse"] for r in labels] == ["Supine", "Prone", "Sitting", "Standing"]
    assert all(r["coarse"] == taxonomy.FINE_TO_COARSE[r["fine"]] for r in labels)
    frames = list(iter_frames(open_input(demo.video), fps=2.0))
    assert [f.time_s for f in frames] == pytest.approx([float(r["time_s"]) for r in labels])
    for frame, png in zip(frames, pngs):  # the video shows the photos (lossy: close, not equal)
        still = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)
        assert frame.image.shape == (96, 96, 3) and np.abs(frame.image - still).mean() < 12
    assert np.abs(np.asarray(Image.open(pngs[0]), float) - np.asarray(Image.open(pngs[-1]), float)).mean() > 5
    stamps = [p.stat().st_mtime_ns for p in (*pngs, demo.video, demo.labels)]
    again = render_demo_session(tmp_path / "demo", seed=1, frames=4, fps=2.0, image_size=96)  # rendered before: kept
    assert again == demo and [p.stat().st_mtime_ns for p in (*pngs, demo.video, demo.labels)] == stamps
    fewer = render_demo_session(tmp_path / "demo", seed=1, frames=2, fps=2.0, image_size=96)  # other settings: anew
    assert sorted(p.name for p in fewer.folder.iterdir()) == ["frame_000.png", "frame_001.png"]
    assert len(read_csv(fewer.labels)) == 2
    (tmp_path / "foreign" / "frames").mkdir(parents=True)
    (tmp_path / "foreign" / "frames" / "holiday.png").write_bytes(b"x")  # not ours: refused, never removed
    with pytest.raises(ValueError, match="not an empty folder"):
        render_demo_session(tmp_path / "foreign", frames=4, image_size=96)
    assert (tmp_path / "foreign" / "frames" / "holiday.png").exists()
