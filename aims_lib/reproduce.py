"""Run the numbered notebooks headlessly with papermill: ``python -m aims_lib.reproduce``.

Each notebook ``notebooks/NN_*.ipynb`` is executed in order with the parameters injected after
its cell tagged ``parameters``; the executed copy and its HTML export go to
``reports/<profile>/``, together with ``run.json`` (parameters, wall time per notebook). A
failing notebook stops the chain; its partial executed copy is kept and the error names the
notebook and the failing cell.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aims_lib.data.format import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("smoke", "quick", "paper")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--reports", type=Path, default=REPO / "reports", help="reports root")
    parser.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 01 02")
    args = parser.parse_args(argv)

    selection = notebooks()
    if args.only:
        selection = [nb for nb in selection if any(nb.name.startswith(p) for p in args.only)]
    if not selection:
        parser.error("no notebooks to run (notebooks/NN_*.ipynb)")
    out_dir = args.reports / args.profile
    params = {"profile": args.profile, "seed": args.seed, "device": args.device,
              "reports_dir": str(out_dir)}
    start = time.perf_counter()
    try:
        walls = run_notebooks(params, out_dir, selection)
    except NotebookFailed as exc:
        print(f"[reproduce] error: {exc}", file=sys.stderr)
        return 1
    run = {"parameters": params, "wall_seconds": walls, "total_seconds": round(time.perf_counter() - start, 1)}
    atomic_write_bytes(out_dir / "run.json", json.dumps(run, indent=2).encode())
    print(f"[reproduce] all notebooks done in {run['total_seconds']:.0f} s; reports in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
