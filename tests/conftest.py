"""Shared fixtures: paths of the committed data fixtures, a SMIL-format body file, and the session
report's fake predictor (``fake_predictor``, with the ``photo`` it reads and the ``predictions``
it builds)."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pytest
import scipy.sparse

from aims_lib import taxonomy

if TYPE_CHECKING:
    from aims_lib.predict import Predictions

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "data" / "fixtures"


@pytest.fixture
def aims_tiny() -> Path:
    return FIXTURES / "aims_tiny" / "annotations.json"


@pytest.fixture
def syrip_tiny() -> Path:
    return FIXTURES / "syrip_tiny"


def _fake_chumpy_modules() -> dict[str, types.ModuleType]:
    """Minimal stand-ins for chumpy's pickled classes, only to write a SMIL-like fixture."""
    root, ch, reordering = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.reordering"))

    class Ch:  # chumpy pickles the instance dict: the array ``x`` plus bookkeeping
        def __init__(self, x):
            self.x, self._dirty_vars, self._itr = x, set(), None

    class Select:
        def __init__(self, a, idxs, preferred_shape):
            self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch.Ch, reordering.Select = Ch, Select
    root.ch, root.reordering = ch, reordering
    return {"chumpy": root, "chumpy.ch": ch, "chumpy.reordering": reordering}


@pytest.fixture
def smil_like(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A SMIL-like pickle: chumpy objects, a sparse regressor, 20 shape components (the procedural
    infant's 14 and six small ones), as the official ``smil_web.pkl`` is laid out."""
    from aims_lib.body import procedural_arrays

    arrays = procedural_arrays()
    rng = np.random.default_rng(1)
    shapedirs = np.concatenate([arrays["shapedirs"], 1e-3 * rng.normal(size=(6890, 3, 20 - arrays["shapedirs"].shape[2]))], axis=2)
    modules = _fake_chumpy_modules()
    with pytest.MonkeyPatch.context() as mp:
        for name, module in modules.items():
            mp.setitem(sys.modules, name, module)
        Ch, Select = modules["chumpy.ch"].Ch, modules["chumpy.reordering"].Select
        posedirs = arrays["posedirs"].astype(np.float64)
        data = {
            "v_template": Ch(arrays["v_template"].copy()),
            "shapedirs": Ch(shapedirs),
            "posedirs": Select(Ch(posedirs.ravel()), np.arange(posedirs.size), posedirs.shape),
            "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
            "weights": Ch(arrays["weights"].copy()),
            "kintree_table": arrays["kintree_table"].astype(np.uint32),
            "f": arrays["f"].astype(np.uint32),
            "bs_style": "lbs",
        }
        path = tmp_path / "smil_web.pkl"
        path.write_bytes(pickle.dumps(data, protocol=2))
    assert "chumpy" not in sys.modules
    assert b"chumpy.ch" in path.read_bytes()
    return path, shapedirs


# ----------------------------------------------------------------------------- the session report's fake predictor

#: The answer a :func:`photo` asks the fake predictor for, by its blue level.
PHOTO_ANSWERS: dict[str, int] = {"fine": 0, "coarse_only": 128, "uncertain": 255}


def _predictions(**fields: Any) -> Predictions:
    """A real :class:`~aims_lib.predict.Predictions` from the per-image fields the session reads
    (coarse, coarse_probs, fine, fine_probs, smplify_failed, no_infant, calibrated, answer,
    answer_coarse, answer_fine, needs_review, review_reason), the others filled in."""
    from aims_lib.predict import Predictions

    n = len(fields["coarse"])
    coarse_id = np.array([taxonomy.coarse_id(c) for c in fields["coarse"]])
    fine_id = np.array([taxonomy.fine_id(f) for f in fields["fine"]])
    return Predictions(
        coarse_id=coarse_id, coarse_prob=fields["coarse_probs"][np.arange(n), coarse_id],
        image_coarse_probs=fields["coarse_probs"], fine_id=fine_id, fine_prob=fields["fine_probs"][np.arange(n), fine_id],
        keypoints_2d=np.zeros((n, 17, 2)), keypoint_scores=np.ones((n, 17)), keypoints_3d=np.zeros((n, 17, 3)),
        reprojection_error=np.zeros(n), boxes=np.zeros((n, 4)), box_source=["automatic"] * n,
        coarse_set=[[] for _ in range(n)], fine_set=[[] for _ in range(n)], **fields,
    )


def _photo(fine_id: int, *, answer: Literal["fine", "coarse_only", "uncertain"] = "fine", no_infant: bool = False,
           size: tuple[int, int] = (20, 40)) -> np.ndarray:
    """A flat image the fake predictor reads: red 20 * fine id; green 255 "no infant"; blue the
    answer's kind (:data:`PHOTO_ANSWERS`)."""
    image = np.zeros((*size, 3), dtype=np.uint8)
    image[..., 0] = 20 * fine_id
    image[..., 1] = 255 if no_infant else 0
    image[..., 2] = PHOTO_ANSWERS[answer]
    return image


class FakePredictor:
    """Labels an image from its colours (:func:`_photo`); the fine probability is 0.5 + red / 600,
    so a later class reads as more confident. Its answer commits to the fine pose ("fine"), only
    to its posture ("coarse_only": "Sitting, fine pose uncertain") or to nothing ("uncertain":
    the posture or the next one, needs review), or finds no infant (needs review). Records the
    shape of every image it receives; raises on any batch holding an image whose red level is
    ``fail_on_red``."""

    def __init__(self, calibrated: bool = False, fail_on_red: int | None = None) -> None:
        self.calibrated, self.fail_on_red = calibrated, fail_on_red
        self.shapes: list[tuple[int, ...]] = []

    def predict(self, images: Any, bboxes: Any = None, batch_size: int = 32) -> Predictions:
        assert bboxes is None, "the session lets the predictor find the infant"
        arrays = [np.asarray(im) for im in images]
        means = np.array([a.reshape(-1, 3).mean(0) for a in arrays])
        if self.fail_on_red is not None and any(abs(m[0] - self.fail_on_red) < 5 for m in means):
            raise RuntimeError("broken frame")
        self.shapes += [a.shape for a in arrays]
        n = len(arrays)
        fine_ids = np.clip(np.round(means[:, 0] / 20).astype(int), 0, taxonomy.NUM_FINE - 1)
        fine = [taxonomy.FINE[i] for i in fine_ids]
        coarse = [taxonomy.FINE_TO_COARSE[f] for f in fine]
        no_infant = means[:, 1] > 128
        kinds = [min(PHOTO_ANSWERS, key=lambda k: abs(PHOTO_ANSWERS[k] - b)) for b in means[:, 2]]
        answer, answer_coarse, answer_fine = [], [], []
        for f, c, ni, kind in zip(fine, coarse, no_infant, kinds):
            other = taxonomy.COARSE[(taxonomy.coarse_id(c) + 1) % taxonomy.NUM_COARSE]
            text, committed = {"fine": (f"{f} ({c})", (c, f)), "coarse_only": (f"{c}, fine pose uncertain", (c, None)),
                               "uncertain": (f"uncertain: {c} or {other}", (None, None))}[kind]
            text, committed = ("no infant found", (None, None)) if ni else (text, committed)
            answer.append(text)
            answer_coarse.append(committed[0])
            answer_fine.append(committed[1])
        uncertain = np.array([k == "uncertain" for k in kinds])
        prob = 0.5 + means[:, 0] / 600
        fine_probs = np.repeat(((1 - prob) / (taxonomy.NUM_FINE - 1))[:, None], taxonomy.NUM_FINE, axis=1)
        fine_probs[np.arange(n), fine_ids] = prob
        coarse_probs = fine_probs @ np.eye(taxonomy.NUM_COARSE)[list(taxonomy.FINE_TO_COARSE_ID)]
        return _predictions(
            coarse=coarse, coarse_probs=coarse_probs, fine=fine, fine_probs=fine_probs,
            smplify_failed=np.zeros(n, dtype=bool), no_infant=no_infant, calibrated=self.calibrated, answer=answer,
            answer_coarse=answer_coarse, answer_fine=answer_fine, needs_review=no_infant | uncertain,
            review_reason=["no keypoint above 0.3" if ni else a if un else "" for a, ni, un in zip(answer, no_infant, uncertain)],
        )


@pytest.fixture
def fake_predictor() -> type[FakePredictor]:
    """The fake predictor class: ``fake_predictor(calibrated=False, fail_on_red=None)``."""
    return FakePredictor


@pytest.fixture
def photo() -> Any:
    """Makes an image for the fake predictor: ``photo(fine_id, answer="fine", no_infant=False, size=(20, 40))``."""
    return _photo


@pytest.fixture
def predictions() -> Any:
    """Builds a :class:`~aims_lib.predict.Predictions` from the per-image fields the session reads."""
    return _predictions
