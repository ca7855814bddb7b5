"""Per-stage wall times of a run (issue 26): recorded, replaced on a rerun, read per run."""

import json
import time

import pytest

from aims_lib.stage_times import STAGES_FILE, record_stages, stages_since, timed_stage


def test_stages_are_recorded_in_the_order_they_end_and_a_rerun_replaces(tmp_path):
    start = time.time()
    record_stages(tmp_path, {"01 generation": 12.34, "01 card": 5})
    with timed_stage(tmp_path, "03 2D training"):
        pass
    record_stages(tmp_path, {"01 generation": 20.0})  # the stage ran again
    stages = stages_since(tmp_path, start)
    assert list(stages) == ["01 card", "03 2D training", "01 generation"]
    assert stages["01 generation"] == 20.0 and stages["01 card"] == 5.0 and 0 <= stages["03 2D training"] < 1


def test_stages_of_an_earlier_run_are_left_out(tmp_path):
    record_stages(tmp_path, {"old": 1.0})
    data = json.loads((tmp_path / STAGES_FILE).read_text())
    data["old"]["ended"] -= 3600
    (tmp_path / STAGES_FILE).write_text(json.dumps(data))
    since = time.time()
    record_stages(tmp_path, {"new": 2.0})
    assert stages_since(tmp_path, since) == {"new": 2.0}


def test_a_failing_stage_is_not_recorded(tmp_path):
    with pytest.raises(RuntimeError), timed_stage(tmp_path, "broken"):
        raise RuntimeError("boom")
    assert not (tmp_path / STAGES_FILE).exists()


def test_bad_seconds_and_a_damaged_file_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="stage 'x': seconds must be a number >= 0, got -1"):
        record_stages(tmp_path, {"x": -1})
    (tmp_path / STAGES_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=f"{STAGES_FILE}: not JSON"):
        stages_since(tmp_path, 0)
