"""Where a notebook's data, runs and reports live: one context for every notebook.

Every numbered notebook starts from the same facts: the profile, the device, the reports folder,
the dataset it works on and whether that is the embedded benchmark or real data.
:func:`notebook_context` derives them once, so the five notebooks agree.

The dataset is one of three:

* no ``data_dir``: the embedded benchmark of the profile and seed (``data/embedded/...``), which
  notebook 01 generates; the same in a ``data_dir`` that holds no dataset yet or a generator run;
* a ``data_dir`` that holds synthetic images: that dataset as it is;
* a ``data_dir`` of real images only (the paper's situation: SyRIP's real images with AIMS
  labels, the synthetic ones to be rendered): that import merged with the profile's synthetic
  images, rendered with the SMIL model when one is given. :func:`prepare_dataset` (notebook 01)
  renders them to ``<import>-synthetic-<profile>-<body>-seed<k>`` and merges both into
  ``<import>+synthetic-<profile>-<body>-seed<k>``, beside the import, which is never written.

Each notebook leaves its results in a record, ``<reports>/0N_*.json``, which later notebooks and
:mod:`aims_lib.reproduce` read: :func:`write_record` writes every one of them the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aims_lib.data.format import ANNOTATIONS_FILE, AimsDataset, load_dataset
from aims_lib.data.merge import data_kind, merge_datasets
from aims_lib.files import write_json
from aims_lib.machine import resolve_device
from aims_lib.profiles import Profile, embedded_data_dir, get_profile, reports_path
from aims_lib.synth.generator import MANIFEST_FILE, GeneratorConfig, generate

def body_tag(smil_model: str | Path = "") -> str:
    """The synthetic body's short name in folder names: ``procedural`` or the SMIL file's stem."""
    return Path(smil_model).stem if smil_model else "procedural"


def has_synthetic_images(data_dir: str | Path) -> bool:
    """Whether a dataset directory holds images of the synthetic domain."""
    path = Path(data_dir)
    data = json.loads((path / ANNOTATIONS_FILE if path.is_dir() else path).read_text(encoding="utf-8"))
    return any(img.get("domain") == "synthetic" for img in data.get("images", []))


@dataclass(frozen=True)
class NotebookContext:
    """What a notebook works on (module docstring)."""

    profile: Profile
    seed: int
    device: str
    out_dir: Path  # reports of this run: records, figures, runs
    data_path: Path  # the dataset the notebooks read
    user_data: Path | None  # the user's dataset directory, when given
    generated: bool  # whether the embedded generator makes (or resumes) data_path
    synthetic_path: Path | None  # where the synthetic images of an import are rendered, when needed
    smil_model: Path | None  # the SMIL body, when given (SMPLify; rendering an import's synthetic domain)

    @property
    def fig_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def run_root(self) -> Path:
        return self.out_dir / "runs"

    @property
    def synthetic_body(self) -> str:
        """The body the synthetic images were rendered with: ``procedural`` or the SMIL file name."""
        return self.smil_model.name if self.smil_model and self.synthetic_path else "procedural"

    def dataset(self) -> AimsDataset:
        if not (self.data_path / ANNOTATIONS_FILE).is_file():
            raise FileNotFoundError(f"{self.data_path} holds no dataset yet: run notebook 01 first (it prepares it)")
        return load_dataset(self.data_path)

    def data_label(self, ds: AimsDataset) -> str:
        """How results on ``ds`` are labelled: the embedded benchmark or real data, and a dry run
        as one (its numbers mean nothing)."""
        label = "embedded benchmark" if data_kind(ds.info) == "embedded" else "real data"
        return f"DRY RUN (numbers meaningless), {label}" if self.profile.dry_run else label


def notebook_context(
    profile: str, seed: int, device: str = "auto", reports_dir: str | Path = "", data_dir: str | Path = "",
    smil_model: str | Path = "", dry_run: bool = False, **profile_overrides: Any,
) -> NotebookContext:
    """The context of a notebook run from its ``parameters`` (the figure and run folders exist);
    ``dry_run``: the profile's :func:`aims_lib.profiles.dry_run`, announced on the first line."""
    prof = get_profile(profile, dry=dry_run, **profile_overrides)
    if prof.dry_run:
        print(f"DRY RUN of the {profile} profile's code path ({prof.n_synthetic} + {prof.n_real} images, "
              f"{prof.image_iters} iterations per epoch): it checks that everything runs; its numbers mean nothing")
    profile = prof.name  # a dry run's data and reports have folders of their own
    user_data = Path(data_dir).resolve() if data_dir else None
    smil = Path(smil_model).resolve() if smil_model else None
    synthetic_path = None
    generated = user_data is None or not (user_data / ANNOTATIONS_FILE).is_file() or (user_data / MANIFEST_FILE).is_file()
    if user_data is None:
        data_path = embedded_data_dir(profile, seed)
    elif generated or has_synthetic_images(user_data):
        data_path = user_data
    else:
        tag = f"{profile}-{body_tag(smil_model)}-seed{seed}"
        synthetic_path = user_data.parent / f"{user_data.name}-synthetic-{tag}"
        data_path = user_data.parent / f"{user_data.name}+synthetic-{tag}"
    out_dir = Path(reports_dir) if reports_dir else reports_path(profile, seed, data_dir, smil_model=smil_model)
    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        from aims_lib.determinism import repeatable_cuda

        print(f"{resolved}: repeatable CUDA settings {repeatable_cuda()}")
    ctx = NotebookContext(prof, seed, resolved, out_dir, data_path, user_data, generated, synthetic_path, smil)
    ctx.fig_dir.mkdir(parents=True, exist_ok=True)
    return ctx


def prepare_dataset(ctx: NotebookContext, workers: int = 1, trust_smil_model: bool = False) -> dict[str, Any] | None:
    """Make the dataset the notebooks read: generate the embedded benchmark, or render the
    synthetic images of an import and merge both (module docstring); a dataset that exists
    already is resumed or left as it is. Returns the generator's summary, None when nothing
    was generated."""
    prof = ctx.profile
    if ctx.generated:
        return generate(GeneratorConfig(prof.n_synthetic, prof.n_real, prof.render_size, ctx.seed, workers), ctx.data_path)
    if ctx.synthetic_path is None:
        return None
    config = GeneratorConfig(prof.n_synthetic, 0, prof.render_size, ctx.seed, workers,
                             body=str(ctx.smil_model) if ctx.smil_model else None, trust_body=trust_smil_model)
    summary = generate(config, ctx.synthetic_path)
    merge_datasets([ctx.user_data, ctx.synthetic_path], ctx.data_path,
                   f"{ctx.user_data.name} with {prof.n_synthetic} synthetic images rendered from the "
                   f"{ctx.synthetic_body} body ({prof.name} profile, seed {ctx.seed})")
    return summary


def write_record(target: NotebookContext | str | Path, name: str, record: Mapping[str, Any]) -> Path:
    """Write a notebook's record ``<name>.json`` into the reports folder (a context's or the one
    given), :func:`aims_lib.files.json_ready` and atomically, so that a reader never sees half of it."""
    out_dir = target.out_dir if isinstance(target, NotebookContext) else Path(target)
    if isinstance(target, NotebookContext) and target.profile.dry_run:
        record = {"dry_run": True, **record}
    path = out_dir / f"{name}.json"
    return write_json(path, record)
