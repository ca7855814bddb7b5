"""Run the numbered notebooks headlessly with papermill: ``python -m aims_lib.reproduce``.

Each notebook ``notebooks/NN_*.ipynb`` is executed in order with the parameters injected after
its cell tagged ``parameters``; the executed copy and its HTML export go to
``reports/<profile>/seed<k>/`` (:func:`aims_lib.profiles.reports_path`), together with
``run.json`` (parameters, machine with the CPU's instruction-set level, wall time per notebook
and per big stage inside them: :mod:`aims_lib.stage_times`) and ``results.json``, the
machine-readable summary gathered from the records the notebooks write (:func:`collect_results`;
its layout and theirs: :mod:`aims_lib.records`). A failing notebook stops the chain; its partial
executed copy is kept and the error names the notebook and the failing cell.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aims_lib import records
from aims_lib.files import REPO, atomic_write_bytes, write_json
from aims_lib.machine import cpu_isa_level, machine
from aims_lib.pose_branch.model_config import CONFIG_DIR, check_config_path
from aims_lib.profiles import get_profile, reports_path
from aims_lib.stage_times import stages_since
from aims_lib.statistics import Comparison, SeedSummary
from aims_lib.machine import DEVICES, resolve_device

PROFILES = ("smoke", "quick", "paper")


#: The keys :func:`check_results` requires, from the types of :mod:`aims_lib.records`.
RESULT_KEYS: dict[str, Any] = {
    "results": records.required_keys(records.Results),
    "table2": records.table_keys(records.Table2),
    "table3": records.table_keys(records.Table3),
    "accuracy": records.keys(SeedSummary),
    "comparisons": records.keys(Comparison),
    "smplify": records.keys(records.SmplifyResult),
    "pose2d": records.keys(records.Pose2DResult),
    "image_backbone": records.keys(records.BackboneResult),
    "uda_methods": records.keys(records.UdaMethods),
    "uda_cell": records.keys(records.UdaCell),
    "auto_box": records.keys(records.AutoBox),
    "calibration": records.keys(records.CalibrationStudy),
    "calibration_model": records.keys(records.CalibrationModel),
}


class NotebookFailed(RuntimeError):
    """A notebook of the chain raised; the message names it and its failing cell."""


def notebooks(directory: Path = REPO / "notebooks") -> list[Path]:
    """The numbered notebooks in run order."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def _failing_cell(executed: Path) -> str:
    """Describe the first cell of an executed notebook whose output is an error."""
    nb = json.loads(executed.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                source = "".join(cell.get("source", "")).strip().splitlines()
                first = source[0] if source else ""
                return f"cell {i} ({first[:80]!r}): {out.get('ename')}: {out.get('evalue')}"
    return "no failing cell recorded"


def export_html(executed: Path) -> Path:
    """Write an HTML rendering beside an executed notebook."""
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html = executed.with_suffix(".html")
    atomic_write_bytes(html, body.encode("utf-8"))
    return html


def run_notebooks(
    parameters: dict[str, Any],
    out_dir: Path,
    selection: Sequence[Path] | None = None,
    kernel: str = "python3",
) -> dict[str, float]:
    """Execute notebooks in order into ``out_dir``; returns wall seconds per notebook."""
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}
    for nb in selection if selection is not None else notebooks():
        executed = out_dir / nb.name
        print(f"[reproduce] {nb.name} -> {executed}", flush=True)
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb), str(executed), parameters=parameters, kernel_name=kernel,
                cwd=str(REPO), progress_bar=False,
            )
        except pm.PapermillExecutionError as exc:
            raise NotebookFailed(
                f"{nb.name} failed at cell {exc.exec_count} ({exc.ename}: {exc.evalue}); "
                f"partial output kept in {executed}"
            ) from None
        except Exception as exc:  # kernel died, bad notebook file, ...
            detail = _failing_cell(executed) if executed.exists() else str(exc)
            raise NotebookFailed(f"{nb.name} failed: {detail}; partial output in {executed}") from exc
        walls[nb.stem] = round(time.perf_counter() - start, 1)
        export_html(executed)
        print(f"[reproduce] {nb.name} done in {walls[nb.stem]:.1f} s", flush=True)
    return walls


def collect_results(out_dir: Path, parameters: dict[str, Any], walls: dict[str, float]) -> records.Results:
    """Gather ``results.json`` from the notebooks' records in ``out_dir`` (:class:`aims_lib.records.Results`)."""
    dataset = records.DatasetRecord.read(out_dir, missing_ok=True)
    image = records.ImageBranchRecord.read(out_dir, missing_ok=True)
    pose = records.PoseBranchRecord.read(out_dir, missing_ok=True)
    full = records.FullModelRecord.read(out_dir, missing_ok=True)
    ablations = records.AblationsRecord.read(out_dir, missing_ok=True)
    deployment = records.DeploymentRecord.read(out_dir, missing_ok=True)
    table2 = {level: {k: None for k in row} for level, row in RESULT_KEYS["table2"].items()}
    for level, row in image.get("table2_image", {}).items():
        table2[level].update(row)
    for level, row in full.get("table2", {}).items():
        table2[level].update({k: v for k, v in row.items() if k in ("pose", "full")})
    table3 = {src: {k: image.get("table3", {}).get(src, {}).get(k) for k in row}
              for src, row in RESULT_KEYS["table3"].items()}
    smplify = {k: pose.get("smplify", {}).get(k) for k in RESULT_KEYS["smplify"]}
    pose2d = {k: pose.get("pose2d", {}).get(k) for k in RESULT_KEYS["pose2d"]}
    accuracy = {"table2": {level: {k: None for k in row} for level, row in RESULT_KEYS["table2"].items()},
                "table3": {src: {k: image.get("accuracy", {}).get("table3", {}).get(src, {}).get(k) for k in row}
                           for src, row in RESULT_KEYS["table3"].items()}}
    for source in (image.get("accuracy", {}).get("table2_image", {}), full.get("accuracy", {}).get("table2", {})):
        for level, row in source.items():
            accuracy["table2"][level].update(row)
    backbone = image.get("image_backbone", {})
    device = next((r["device"] for r in (full, pose, image) if r.get("device")), parameters.get("device"))
    return records.Results(
        profile=parameters["profile"],
        dry_run=bool(parameters.get("dry_run", False)),
        seed=parameters["seed"],
        device=device,
        data=dataset.get("data", "embedded"),
        synthetic_body=dataset.get("synthetic_body", "procedural"),
        table2=table2,
        table3=table3,
        seeds=image.get("seeds", [parameters["seed"]]),
        accuracy=accuracy,
        comparisons=image.get("comparisons", []) + full.get("comparisons", []),
        gap_closed=image.get("gap_closed"),
        uda_methods=ablations.get("uda_methods"),
        smplify=smplify,
        pose2d=pose2d,
        image_backbone={k: backbone.get(k) for k in RESULT_KEYS["image_backbone"]},
        card={**dataset["card"], "pose2d": pose.get("card_pose2d")} if dataset.get("card") else None,
        auto_box=deployment.get("auto_box"),
        calibration=deployment.get("calibration"),
        machine=machine(),
        wall_seconds=walls,
    )


def results_markdown(results: dict[str, Any]) -> str:
    """The README's results tables: ours (top-1 % on the real test split, the headline seed) with
    its 95 % interval, macro accuracy and, with several seeds, their mean +- sd, beside the
    paper's; then the paper's comparisons as paired differences."""
    from aims_lib.paper_tables import PAPER_TABLE2, PAPER_TABLE3, ROW_NAMES, markdown_table, paper_difference

    data = "embedded benchmark" if results["data"] == "embedded" else "real data"
    body = results.get("synthetic_body", "procedural")
    run = f"{results['profile']} DRY RUN, numbers meaningless" if results.get("dry_run") else results["profile"]
    ours = f"ours ({data}{'' if body == 'procedural' else f', synthetic images of {body}'}, {run})"
    rows = []
    for table, key, paper in (("2", "table2", PAPER_TABLE2), ("3", "table3", PAPER_TABLE3)):
        for group, row in results[key].items():
            for k, v in row.items():
                d = (results.get("accuracy", {}).get(key, {}).get(group) or {}).get(k) or {}
                over = d.get("over_seeds") or {}
                rows.append({
                    "table": table, "task / source": "real (target oracle)" if group == "real" else group,
                    "method": ROW_NAMES[k], ours: float("nan") if v is None else v,
                    "95% CI": f"[{d['top1_low']:.1f}, {d['top1_high']:.1f}]" if d else "–",
                    "macro": d.get("macro", float("nan")),
                    "seeds: mean ± sd": f"{over['mean']:.1f} ± {over['sd']:.1f} ({over['n_seeds']})" if over.get("sd") is not None else "–",
                    "paper": paper.get(group, {}).get(k, float("nan")),
                })
    comparisons = [
        {"comparison (B vs A)": c["name"], "B - A (points)": c["difference"], "95% CI": f"[{c['low']:.1f}, {c['high']:.1f}]",
         "McNemar p": f"{c['p']:.3f}", "only A right / only B right": f"{c['a_only']} / {c['b_only']}",
         "paper B - A": paper_difference(c["name"]) if paper_difference(c["name"]) is not None else float("nan")}
        for c in results.get("comparisons", [])
    ]
    out = markdown_table(rows)
    if comparisons:
        out += "\n\n" + markdown_table(comparisons)
    if results.get("uda_methods"):
        from aims_lib.image_branch.comparison import table_rows

        out += "\n\n" + markdown_table(table_rows(results["uda_methods"]))
    if results.get("auto_box"):
        out += "\n\n" + markdown_table(deployment_rows(results["auto_box"], results.get("calibration")))
    if results.get("dry_run"):
        out = ("**DRY RUN**: the profile's code path on a handful of images and a few iterations; these numbers "
               "mean nothing.\n\n" + out)
    return out


def deployment_rows(auto_box: dict[str, Any], calibration: dict[str, Any] | None) -> list[dict[str, str]]:
    """Notebook 06 in one table: fine and coarse top-1 by the box the predictor reads, then per
    calibrated model its ECE before and after, then the conformal sets' coverage and size."""
    def interval(d: dict[str, Any]) -> str:
        return f"{d['top1']:.1f} [{d['top1_low']:.1f}, {d['top1_high']:.1f}]"

    rows = [{"deployed predictor (real test)": f"{mode} boxes", "fine": interval(levels["fine"]), "coarse": interval(levels["coarse"])}
            for mode, levels in auto_box["accuracy"].items()]
    for model in (calibration or {}).get("models", {}).values():
        e = model["ece"]
        rows.append({"deployed predictor (real test)": f"ECE, {model['name']}", model["level"]: (
            f"{e['before']['value']:.3f} -> {e['after']['value']:.3f} [{e['after']['low']:.3f}, {e['after']['high']:.3f}]"),
            "fine" if model["level"] == "coarse" else "coarse": ""})
    if calibration:
        c = calibration["conformal"]
        rows.append({"deployed predictor (real test)": f"conformal sets at {c['level']}: coverage, mean size",
                     **{level: f"{c[level]['coverage']:.3f}, {c[level]['mean_size']:.2f}" for level in ("fine", "coarse")}})
    return rows


def check_results(results: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first key of ``results`` that breaks the shape of
    :class:`aims_lib.records.Results`."""
    for key in RESULT_KEYS["results"]:
        if key not in results:
            raise ValueError(f"results: missing key {key!r}")
    if results["data"] not in ("embedded", "real"):
        raise ValueError(f"results: data must be 'embedded' or 'real', got {results['data']!r}")
    for table in ("table2", "table3"):
        for group, row in RESULT_KEYS[table].items():
            for k in row:
                value = results[table].get(group, {}).get(k, "missing")
                if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 100.0):
                    raise ValueError(f"results: {table}.{group}.{k} must be a percentage or null, got {value!r}")
    for block in ("smplify", "pose2d"):
        for k in RESULT_KEYS[block]:
            if k not in results[block]:
                raise ValueError(f"results: missing {block}.{k}")
    for k in ("ap", "pck05", "pck10"):
        value = results["pose2d"][k]
        if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise ValueError(f"results: pose2d.{k} must be a fraction in [0, 1] or null, got {value!r}")
    for k in RESULT_KEYS["image_backbone"]:
        if k not in results["image_backbone"]:
            raise ValueError(f"results: missing image_backbone.{k}")
    for table in ("table2", "table3"):
        for group, row in RESULT_KEYS[table].items():
            for k in row:
                detail = results["accuracy"][table].get(group, {}).get(k, "missing")
                if detail is None:
                    continue
                missing = [f for f in RESULT_KEYS["accuracy"] if not isinstance(detail, dict) or f not in detail]
                if missing:
                    raise ValueError(f"results: accuracy.{table}.{group}.{k} lacks {missing}")
                if not detail["top1_low"] <= detail["top1"] <= detail["top1_high"]:
                    raise ValueError(f"results: accuracy.{table}.{group}.{k}: top1 {detail['top1']} outside its interval")
    _check_uda_methods(results.get("uda_methods"))
    _check_deployment(results.get("auto_box"), results.get("calibration"))
    for i, c in enumerate(results["comparisons"]):
        missing = [f for f in RESULT_KEYS["comparisons"] if f not in c]
        if missing:
            raise ValueError(f"results: comparisons[{i}] ({c.get('name', '?')}) lacks {missing}")
        if not 0.0 <= c["p"] <= 1.0:
            raise ValueError(f"results: comparisons[{i}] ({c['name']}): p {c['p']} is not a probability")


def _check_uda_methods(uda: dict[str, Any] | None) -> None:
    """The ``uda_methods`` block (None: notebook 05 has not run): every planned cell and the
    oracle present, each with its seeds and a top-1 inside its interval."""
    if uda is None:
        return
    missing = [k for k in RESULT_KEYS["uda_methods"] if k not in uda]
    if missing:
        raise ValueError(f"results: uda_methods lacks {missing}")
    details = {"oracle": uda["oracle"]}
    for method, sources in uda["plan"].items():
        for source in sources:
            cell = uda["cells"].get(method, {}).get(source)
            if cell is None:
                raise ValueError(f"results: uda_methods.cells.{method}.{source} is planned but missing")
            lacking = [k for k in RESULT_KEYS["uda_cell"] if k not in cell]
            if lacking:
                raise ValueError(f"results: uda_methods.cells.{method}.{source} lacks {lacking}")
            details[f"cells.{method}.{source}"] = cell
    for where, d in details.items():
        lacking = [k for k in RESULT_KEYS["accuracy"] if k not in d]
        if lacking:
            raise ValueError(f"results: uda_methods.{where} lacks {lacking}")
        if not d["seeds"]:
            raise ValueError(f"results: uda_methods.{where} has no seeds")
        if not d["top1_low"] <= d["top1"] <= d["top1_high"]:
            raise ValueError(f"results: uda_methods.{where}: top1 {d['top1']} outside its interval")


def _check_deployment(auto_box: dict[str, Any] | None, calibration: dict[str, Any] | None) -> None:
    """Notebook 06's blocks (None: it has not run): their keys, top-1 per box mode inside its
    interval, NLL inside its interval (ECE's percentile interval may lie above it: ECE is biased
    upward under resampling), conformal coverage a fraction."""
    for name, block in (("auto_box", auto_box), ("calibration", calibration)):
        if block is not None and (missing := [k for k in RESULT_KEYS[name] if k not in block]):
            raise ValueError(f"results: {name} lacks {missing}")
    for mode, levels in (auto_box or {}).get("accuracy", {}).items():
        for level, d in levels.items():
            if not d["top1_low"] <= d["top1"] <= d["top1_high"]:
                raise ValueError(f"results: auto_box.accuracy.{mode}.{level}: top1 {d['top1']} outside its interval")
    if calibration is None:
        return
    for key, model in calibration["models"].items():
        if missing := [k for k in RESULT_KEYS["calibration_model"] if k not in model]:
            raise ValueError(f"results: calibration.models.{key} lacks {missing}")
        for when in ("before", "after"):
            nll, ece = model["nll"][when], model["ece"][when]
            if not nll["low"] <= nll["value"] <= nll["high"]:
                raise ValueError(f"results: calibration.models.{key}.nll.{when}: {nll['value']} outside its interval")
            if not (0.0 <= ece["value"] <= 1.0 and ece["low"] <= ece["high"]):
                raise ValueError(f"results: calibration.models.{key}.ece.{when}: {ece} is not an ECE with an interval")
    for level in ("coarse", "fine"):
        coverage = calibration["conformal"][level]["coverage"]
        if not 0.0 <= coverage <= 1.0:
            raise ValueError(f"results: calibration.conformal.{level}.coverage {coverage!r} is not a fraction")


def reproduce(parameters: dict[str, Any], out_dir: Path, selection: Sequence[Path] | None = None) -> dict[str, Any]:
    """Run the notebooks, then write ``run.json`` and ``results.json`` into ``out_dir``; returns the results."""
    start, started = time.perf_counter(), time.time()
    walls = run_notebooks(parameters, out_dir, selection)
    run = {"parameters": parameters, "machine": machine(), "wall_seconds": walls,
           "stage_seconds": stages_since(out_dir, started), "total_seconds": round(time.perf_counter() - start, 1)}
    write_json(out_dir / "run.json", run)
    results = collect_results(out_dir, parameters, walls)
    check_results(results)
    write_json(out_dir / "results.json", results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of every training run")
    parser.add_argument("--train-seeds", type=int, nargs="*", default=[],
                        help="more training seeds for the image branch and HIPC on the same data (mean and sd beside "
                             "the intervals); the run of --seed is always one of them")
    parser.add_argument("--dry-run", action="store_true",
                        help="the profile's code path on a handful of images and a few iterations per stage, e.g. the "
                             "paper profile on the CPU in minutes; reports go to reports/<profile>-dry-run and are "
                             "marked as a dry run (its numbers mean nothing)")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} (checked before the first notebook runs)")
    parser.add_argument("--gpus", type=int, default=1,
                        help="processes (one per GPU) that train each image-branch run and the 2D model under torchrun, "
                             "the global batch split over them (notebooks 02, 03 and 05); 1: the notebook's own process")
    parser.add_argument("--reports", type=Path, default=REPO / "reports", help="reports root")
    parser.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 01 02")
    parser.add_argument("--table", type=Path, default=None, metavar="RESULTS_JSON",
                        help="print the results table of a results.json as markdown and exit")
    real = parser.add_argument_group("real data and weights (default: the embedded benchmark and packaged weights)")
    real.add_argument("--data-dir", default="", help="an imported SyRIP/AIMS dataset directory (data/README.md)")
    real.add_argument("--smil-model", default="", help="SMIL model file (smil_web.pkl) instead of the procedural body")
    real.add_argument("--pose2d-checkpoint", default="", help="mmpose checkpoint to start the 2D keypoints from")
    real.add_argument("--pose2d-config", default="",
                      help="config under configs/pose2d (or a path) that the checkpoint fits, e.g. hrnet_w32_256x192.py "
                           "(default: the profile's)")
    real.add_argument("--pretrained", default="",
                      help="weights file of the profile's image-branch backbone (e.g. torchvision's ImageNet ResNet-50 for PROFILE=paper)")
    trust = parser.add_argument_group("trust (SECURITY.md): files are read as data only unless you vouch for them")
    trust.add_argument("--trust-smil-model", action="store_true",
                       help="unpickle --smil-model fully (it may run code): only for a file whose origin you trust")
    trust.add_argument("--trust-pose2d-checkpoint", action="store_true",
                       help="unpickle --pose2d-checkpoint fully (it may run code): only for a file whose origin you trust")
    trust.add_argument("--trust-pose2d-config", action="store_true",
                       help="execute a .py --pose2d-config from outside configs/pose2d (it is code): only for a file whose "
                            "origin you trust; a .json config needs no opt-in")
    args = parser.parse_args(argv)
    if args.table is not None:
        results = json.loads(args.table.read_text())
        check_results(results)
        print(results_markdown(results))
        return 0
    try:  # before notebook 01 runs: one line (argparse's, without the usage), not a failed notebook
        resolve_device(args.device)
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: --device: {exc}\n")
    try:  # 2D training (notebook 03) and run.json read the level: a bad hold fails here, not there
        cpu_isa_level()
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    for name in ("data_dir", "smil_model", "pose2d_checkpoint", "pretrained"):
        value = getattr(args, name)
        if value and not Path(value).exists():
            parser.error(f"--{name.replace('_', '-')}: {value} does not exist")

    selection = notebooks()
    if args.only:
        selection = [nb for nb in selection if any(nb.name.startswith(p) for p in args.only)]
    if not selection:
        parser.error("no notebooks to run (notebooks/NN_*.ipynb)")
    run_name = get_profile(args.profile, dry=args.dry_run).name
    out_dir = reports_path(run_name, args.seed, args.data_dir, root=args.reports, smil_model=args.smil_model)
    params = {"profile": args.profile, "seed": args.seed, "device": args.device,
              "reports_dir": str(out_dir)}
    if args.dry_run:
        params["dry_run"] = True
    if args.gpus < 1:
        parser.error(f"--gpus must be >= 1, got {args.gpus}")
    if args.gpus > 1:  # notebooks 02, 03 and 05 read it
        params["gpus"] = args.gpus
    if args.train_seeds:  # notebooks 02 and 04 read it
        params["train_seeds"] = " ".join(map(str, args.train_seeds))
    params |= {k: str(Path(v).resolve()) for k in ("data_dir", "smil_model", "pose2d_checkpoint", "pretrained")
               if (v := getattr(args, k))}
    if args.pose2d_config:  # checked now, not after notebooks 01 and 02
        config = Path(args.pose2d_config)
        config = config.resolve() if config.is_file() else CONFIG_DIR / args.pose2d_config
        try:
            check_config_path(config, args.trust_pose2d_config)
        except (FileNotFoundError, ValueError) as exc:
            parser.error(f"--pose2d-config: {exc}")
        params["pose2d_config"] = str(config)
    for name, file in (("trust_smil_model", args.smil_model), ("trust_pose2d_checkpoint", args.pose2d_checkpoint),
                       ("trust_pose2d_config", args.pose2d_config)):
        if getattr(args, name):
            if not file:
                parser.error(f"--{name.replace('_', '-')} names no file: give --{name[6:].replace('_', '-')} too")
            params[name] = True
    try:
        results = reproduce(params, out_dir, selection)
    except NotebookFailed as exc:
        print(f"[reproduce] error: {exc}", file=sys.stderr)
        return 1
    total = sum(results["wall_seconds"].values())
    print(f"[reproduce] all notebooks done in {total:.0f} s; reports in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
