"""Wall seconds of the big stages inside the notebooks (generation, the card, 2D training, each
SMPLify lift), so that a slow run says where its time went and not only which notebook.

A notebook times a stage with ``with timed_stage(out_dir, "01 generation"):`` or records a time
it measured with :func:`record_stages`; both write ``stages.json`` in the reports folder
(atomically), each stage with its seconds and the wall-clock time it ended. A stage that runs
again replaces its entry, so :func:`stages_since` (what :mod:`aims_lib.reproduce` puts into
``run.json``) gives the stages of one run, in the order they ended.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from aims_lib.files import write_json

STAGES_FILE: Final = "stages.json"


def _read(out_dir: Path) -> dict[str, dict[str, float]]:
    path = Path(out_dir) / STAGES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc}); delete it to start the stage times afresh") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of stages, got {type(data).__name__}")
    return data


def record_stages(out_dir: str | Path, seconds: Mapping[str, float]) -> None:
    """Record each stage's wall ``seconds`` (ending now) in ``out_dir/stages.json``."""
    for stage, value in seconds.items():
        if not value >= 0:
            raise ValueError(f"stage {stage!r}: seconds must be a number >= 0, got {value!r}")
    data = _read(Path(out_dir))
    now = time.time()
    for stage, value in seconds.items():
        data.pop(stage, None)  # re-inserted last: the file lists stages in the order they ended
        data[stage] = {"seconds": round(float(value), 1), "ended": now}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(out_dir) / STAGES_FILE, data)


@contextlib.contextmanager
def timed_stage(out_dir: str | Path, stage: str) -> Iterator[None]:
    """Time the block and record it as ``stage`` when it completes (not when it raises)."""
    start = time.perf_counter()
    yield
    record_stages(out_dir, {stage: time.perf_counter() - start})


def stages_since(out_dir: str | Path, since: float) -> dict[str, float]:
    """Seconds of the stages that ended after the wall-clock time ``since`` (``time.time()``)."""
    return {stage: entry["seconds"] for stage, entry in _read(Path(out_dir)).items() if entry.get("ended", 0) >= since}
