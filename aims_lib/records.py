"""The records the notebooks write and ``results.json`` gathers from them: their layout, once, as types.

Each numbered notebook ends by filling its record type (a dataclass whose fields, in their
order, are the keys of ``reports/<profile>/seed<k>/<NAME>.json``) and writing it
(:meth:`NotebookRecord.write`). :mod:`aims_lib.reproduce` reads the records back
(:meth:`NotebookRecord.read`), gathers :class:`Results` (``results.json``) and checks it against
the same types (:func:`keys`), and the notebook tests assert against them. The blocks that
``results.json`` keeps are typed too (TypedDicts: the JSON dicts themselves); their numbers come
from :mod:`aims_lib.statistics` (:class:`~aims_lib.statistics.SeedSummary`,
:class:`~aims_lib.statistics.Comparison`).

Accuracies are top-1 % on the real test split, of the headline training seed's run; ``None``
(``null``) marks a number whose notebook has not run or that could not be computed.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, NotRequired, TypedDict, is_typeddict

from aims_lib.statistics import SeedSummary
from aims_lib.workspace import NotebookContext, write_record


def keys(record_type: type) -> tuple[str, ...]:
    """The keys of a record type in their order: a dataclass's fields or a TypedDict's keys."""
    if dataclasses.is_dataclass(record_type):
        return tuple(f.name for f in dataclasses.fields(record_type))
    if is_typeddict(record_type):
        return tuple(record_type.__annotations__)
    raise TypeError(f"{record_type!r} is neither a dataclass nor a TypedDict")


def required_keys(record_type: type) -> tuple[str, ...]:
    """The keys of a TypedDict that every instance has (not ``NotRequired``), in their order."""
    return tuple(k for k in keys(record_type) if k in record_type.__required_keys__)


def table_keys(table_type: type) -> dict[str, tuple[str, ...]]:
    """The rows of a table type (a TypedDict of row TypedDicts) and the keys of each row."""
    return {group: keys(row) for group, row in table_type.__annotations__.items()}


# -- the paper's tables (rows: aims_lib.paper_tables.ROW_NAMES) --------------------------------


class ImageRows(TypedDict):
    """The image branch without and with LMMD."""

    image: float | None
    image_lmmd: float | None


class CoarseTable2(ImageRows):
    pose: float | None


class FineTable2(CoarseTable2):
    full: float | None


class Table2(TypedDict):
    """Table 2: top-1 % of the image branch (without and with LMMD), the pose branch and, fine, the full model."""

    coarse: CoarseTable2
    fine: FineTable2


class ImageTable2(TypedDict):
    """Notebook 02's rows of Table 2."""

    coarse: ImageRows
    fine: ImageRows


class OracleRow(TypedDict):
    """The target oracle: source-only on the real training labels alone."""

    image: float | None


#: Table 3: coarse top-1 % by source, without and with LMMD; ``real`` is the target oracle.
Table3 = TypedDict("Table3", {"synthetic": ImageRows, "synthetic+real": ImageRows, "real": OracleRow})


class Accuracies(TypedDict):
    """Per number of Table 2 and Table 3, its interval, macro accuracy and per-seed values."""

    table2: dict[str, dict[str, SeedSummary | None]]
    table3: dict[str, dict[str, SeedSummary | None]]


# -- blocks of the notebooks' records that results.json keeps ----------------------------------


class BackboneResult(TypedDict):
    """The image branch's backbone and where its starting weights came from."""

    name: str
    weights: str


class ImageBackbone(BackboneResult):
    image_size: int
    frozen_stages: int


class Pose2DResult(TypedDict):
    """2D keypoints on the real test split: COCO OKS AP, PCK at 0.05 and 0.1 of the box's longer
    side with their 95 % intervals, and the config's file name."""

    ap: float | None
    pck05: float | None
    pck10: float | None
    pck05_interval: list[float | None]
    pck10_interval: list[float | None]
    config: str


class Pose2DRecord(Pose2DResult):
    """Notebook 03's 2D block: the headline numbers, the run and its breakdowns."""

    epochs: int
    checkpoint_start: str | None
    split: str
    train_seconds: float
    learning_curve: list[dict[str, Any]]
    per_keypoint: dict[str, dict[str, float | None]]
    groups: dict[str, dict[str, Any]]
    inference_images_per_s: float


class SmplifyResult(TypedDict):
    """SMPLify's speed and PA-MPJPE on the real test split from annotated and estimated 2D keypoints."""

    fits_per_second: float
    pa_mpjpe_gt2d: float | None
    pa_mpjpe_estimated2d: float | None


class SmplifyRecord(SmplifyResult):
    """Notebook 03's SMPLify block: the headline numbers and the other errors of both 2D inputs."""

    body: str
    fits_per_second_gt: float
    mpjpe_gt2d: float | None
    mpjpe_estimated2d: float | None
    failed_rate_gt: float
    failed_rate_estimated: float
    reprojection_error_gt2d: float | None
    reprojection_error_estimated2d: float | None
    pa_mpjpe_constant_skeleton: float | None
    split: str
    all: dict[str, dict[str, float | None]]


class SeedRuns(SeedSummary):
    """A setting's accuracy over its training seeds and its runs (one per seed, the headline's first)."""

    runs: list[str]


class UdaCell(SeedRuns):
    """One (method, source) of the methods table: its accuracy and runs, its paired comparison
    with source-only on the same source (:meth:`aims_lib.statistics.Comparison.to_dict`; None for
    source-only) and the share of the source-only-to-oracle gap it closes."""

    gap_closed: float | None
    vs_source_only: dict[str, Any] | None


class UdaMethods(TypedDict):
    """The domain-adaptation methods side by side (notebook 05, :mod:`aims_lib.image_branch.comparison`):
    ``plan`` names the sources each method ran on, ``budget`` why some ran on fewer."""

    level: str
    seeds: list[int]
    plan: dict[str, list[str]]
    cells: dict[str, dict[str, UdaCell]]
    oracle: SeedRuns | None  # None: asked for without one (notebook 02's fine rows)
    titles: dict[str, str]
    profile: str
    budget: str


class AutoBox(TypedDict):
    """Top-1 on real test by the box the predictor reads (annotated, automatic, whole image),
    paired comparisons to the annotated boxes, and the automatic boxes' IoU (:mod:`aims_lib.deployment`)."""

    n: int
    accuracy: dict[str, dict[str, dict[str, Any]]]
    top1: dict[str, dict[str, float]]
    comparisons: list[dict[str, Any]]
    no_infant: dict[str, int]
    automatic_iou: dict[str, float]


class CalibrationModel(TypedDict):
    """One calibrated model: ECE and NLL before and after with intervals, what a perfectly
    calibrated model's ECE would be here, and the area under the risk-coverage curve."""

    name: str
    level: str
    n: int
    bins: int
    ece: dict[str, dict[str, float]]
    nll: dict[str, dict[str, float]]
    ece_if_calibrated: dict[str, dict[str, float]]
    aurc: dict[str, float]


class CalibrationStudy(TypedDict):
    """Temperatures, pooling weights, each calibrated model, the pooled full model against the
    paper's product, the conformal sets' coverage and size, and the hierarchical answers."""

    temperatures: dict[str, float]
    pooling: dict[str, float]
    models: dict[str, CalibrationModel]
    pooled_vs_product: dict[str, Any]
    conformal: dict[str, Any]
    answers: dict[str, dict[str, float | None]]


# -- the notebooks' records ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotebookRecord:
    """What every notebook's record holds first; ``NAME`` is its file's stem."""

    NAME: ClassVar[str]

    profile: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """The record as written: its fields in their order (values as given, not copied)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def write(self, ctx: NotebookContext) -> Path:
        """Write ``<NAME>.json`` into the context's reports folder (:func:`aims_lib.workspace.write_record`)."""
        return write_record(ctx, self.NAME, self.to_dict())

    @classmethod
    def read(cls, out_dir: str | Path, missing_ok: bool = False) -> dict[str, Any]:
        """The record in a reports folder as JSON; when its notebook has not run, ``{}`` if
        ``missing_ok``, else a FileNotFoundError that names the notebook."""
        path = Path(out_dir) / f"{cls.NAME}.json"
        if path.exists():
            return json.loads(path.read_text())
        if missing_ok:
            return {}
        raise FileNotFoundError(f"{path} not found: run notebook {cls.NAME[:2]} first (it writes the record)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetRecord(NotebookRecord):
    """Notebook 01: the dataset, its generator run, image counts by domain/split and the benchmark card."""

    NAME: ClassVar[str] = "01_dataset"

    data: str  # "embedded" or "real" (aims_lib.data.merge.data_kind)
    synthetic_body: str
    dataset: str
    generator: dict[str, Any] | None
    counts: dict[str, int]
    card: dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageBranchRecord(NotebookRecord):
    """Notebook 02: Table 3 and the image rows of Table 2, their accuracies over the training
    seeds, LMMD against source-only, and the runs (keys: :func:`aims_lib.image_branch.run_key`)."""

    NAME: ClassVar[str] = "02_image_branch"

    device: str
    data: str
    lmmd_weight: float
    ramp: str
    backbone_weights: str | None
    image_backbone: ImageBackbone
    vs_card: list[dict[str, Any]] | None
    table3: Table3
    table2_image: ImageTable2
    seeds: list[int]
    accuracy: dict[str, dict[str, dict[str, SeedSummary]]]  # {"table3": ..., "table2_image": ...}
    comparisons: list[dict[str, Any]]  # aims_lib.statistics.Comparison.to_dict()
    gap_closed: dict[str, float | None]
    runs_by_setting: dict[str, str]
    runs_by_seed: dict[str, str]
    runs: dict[str, dict[str, Any]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoseBranchRecord(NotebookRecord):
    """Notebook 03: 2D keypoints, the card's 2D row and SMPLify."""

    NAME: ClassVar[str] = "03_pose_branch"

    device: str
    data: str
    pose2d: Pose2DRecord
    card_pose2d: dict[str, Any] | None
    smplify: SmplifyRecord
    outputs: dict[str, str]


@dataclasses.dataclass(frozen=True, kw_only=True)
class FullModelRecord(NotebookRecord):
    """Notebook 04: Table 2, the paper's comparisons of it, and HIPC's study (:mod:`aims_lib.full_model`)."""

    NAME: ClassVar[str] = "04_hipc_full_model"

    device: str
    data: str
    table2: Table2
    paper_table2: dict[str, dict[str, float]]
    seeds: list[int]
    accuracy: dict[str, dict[str, dict[str, SeedSummary]]]  # {"table2": ...}
    comparisons: list[dict[str, Any]]
    diagnosis: dict[str, float]
    diagnosis_accuracy: dict[str, dict[str, Any]]
    train_keypoints: str
    hipc_by_source: dict[str, dict[str, dict[str, Any]]]
    hipc: dict[str, Any]
    per_class: dict[str, dict[str, dict[str, float | None]]]
    confusion_fine: dict[str, list[list[int]]]
    errors_across_coarse: dict[str, int]
    corrected: dict[str, int]
    predictor: dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AblationsRecord(NotebookRecord):
    """Notebook 05: Table 3 again, the LMMD weight sweep, the methods table, fine confusions and 2D keypoint quality."""

    NAME: ClassVar[str] = "05_ablations"

    device: str
    data: str
    table3: Table3
    lambda_sweep: dict[str, Any]
    uda_methods: UdaMethods
    fine_top1: dict[str, float]
    fine_accuracy: dict[str, dict[str, Any]]
    keypoint_quality: dict[str, dict[str, float]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeploymentRecord(NotebookRecord):
    """Notebook 06: boxes, images without an infant, EXIF orientation, calibration and the session demo."""

    NAME: ClassVar[str] = "06_deployment"

    device: str
    data: str
    auto_box: AutoBox
    no_infant_examples: dict[str, str]
    orientation: dict[str, Any]
    calibration: CalibrationStudy
    session_demo: dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExplorerRecord(NotebookRecord):
    """Notebook 07: the explorer's load of the run and the top-1 it reads (Table 2's numbers again)."""

    NAME: ClassVar[str] = "07_explorer"

    data: str
    images: int
    load_seconds: float
    calibration: bool
    selection: dict[str, Any]
    top1_real_test: dict[str, float | None]


#: Every notebook's record type, in run order.
NOTEBOOK_RECORDS: tuple[type[NotebookRecord], ...] = (
    DatasetRecord, ImageBranchRecord, PoseBranchRecord, FullModelRecord, AblationsRecord, DeploymentRecord, ExplorerRecord,
)


class Results(TypedDict):
    """``results.json``: the summary :func:`aims_lib.reproduce.collect_results` gathers from the
    records. ``NotRequired`` keys may be absent from an older file; a block whose notebook has
    not run is ``None``."""

    profile: str
    dry_run: NotRequired[bool]  # True: a check of the code path, numbers meaningless
    seed: int
    device: str
    data: str  # "embedded" or "real"
    synthetic_body: str
    table2: Table2
    table3: Table3
    seeds: list[int]
    accuracy: Accuracies
    comparisons: list[dict[str, Any]]  # the paper's comparisons: aims_lib.statistics.Comparison.to_dict()
    gap_closed: NotRequired[dict[str, float | None] | None]
    uda_methods: NotRequired[UdaMethods | None]
    smplify: SmplifyResult
    pose2d: Pose2DResult
    image_backbone: BackboneResult
    card: NotRequired[dict[str, Any] | None]  # notebook 01's card with notebook 03's 2D row
    auto_box: NotRequired[AutoBox | None]
    calibration: NotRequired[CalibrationStudy | None]
    machine: dict[str, Any]
    wall_seconds: dict[str, float]
