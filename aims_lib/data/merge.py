"""One dataset from several: ``python -m aims_lib.data.merge A B ... --out C``.

The paper trains on rendered synthetic images and tests on real ones, which come from different
places: a user's import of SyRIP with AIMS labels (real domain), images rendered by
``python -m aims_lib.synth`` (synthetic domain) and, optionally, SyRIP's own synthetic images
imported with ``--domain synthetic``. Merging puts them into one dataset without touching any
input:

* every image is copied into ``C/<k>-<name of source k>/<its file name>`` (compared by content,
  written atomically), so file names never collide and ``C`` is self-contained;
* image and annotation ids are renumbered 1..N in source order; each image keeps its source and
  old id as ``merged_from`` = [k, id];
* domains, splits and labels are kept as the sources give them (a real import's splits are never
  redrawn);
* ``info.sources`` lists every source (path, its ``info``, image counts per domain).

A merged dataset counts as real data when any source holds imported images (:func:`data_kind`).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aims_lib.data.format import ANNOTATIONS_FILE, AimsDataset, load_dataset, new_dataset, write_dataset
from aims_lib.files import copy_file_atomic


def data_kind(info: dict[str, Any]) -> str:
    """``"embedded"`` when every image was rendered by the embedded generator, else ``"real"``
    (an import, or a merge with an import among its sources)."""
    if info.get("source") == "merged":
        kinds = {data_kind(s.get("info", {})) for s in info.get("sources", [])}
        return "embedded" if kinds == {"embedded"} else "real"
    return "embedded" if info.get("source") == "embedded-generator" else "real"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def merge_datasets(sources: Sequence[str | Path], out_dir: str | Path, description: str = "") -> AimsDataset:
    """Merge the datasets ``sources`` (directories or annotation files) into ``out_dir``; returns
    the merged dataset. Rerunning with the same sources rewrites nothing that is up to date."""
    if not sources:
        raise ValueError("merge needs at least one source dataset")
    out_dir = Path(out_dir).resolve()
    datasets = [load_dataset(s) for s in sources]
    for ds in datasets:
        root = ds.root.resolve()
        if _inside(out_dir, root) or _inside(root, out_dir):
            raise ValueError(f"--out {out_dir} overlaps source {root}: merging never writes into an input")
    if len({ds.root.resolve() for ds in datasets}) != len(datasets):
        raise ValueError(f"a source is given twice: {[str(s) for s in sources]}")

    merged = new_dataset({
        "source": "merged",
        "description": description or "merged from " + ", ".join(ds.root.name for ds in datasets),
        "sources": [
            {"path": str(ds.root.resolve()), "info": ds.info,
             "images": dict(Counter(s.domain for s in ds.samples))}
            for ds in datasets
        ],
    })
    copies: list[tuple[Path, str]] = []
    for k, ds in enumerate(datasets):
        prefix = f"{k}-{ds.root.resolve().name}"
        anns = {a["image_id"]: a for a in ds.raw["annotations"]}
        for img in ds.raw["images"]:
            new_id = len(merged["images"]) + 1
            entry = copy.deepcopy(img)
            entry |= {"id": new_id, "file_name": f"{prefix}/{img['file_name']}", "merged_from": [k, img["id"]]}
            ann = copy.deepcopy(anns[img["id"]])
            ann |= {"id": new_id, "image_id": new_id}
            merged["images"].append(entry)
            merged["annotations"].append(ann)
            copies.append((ds.root / img["file_name"], entry["file_name"]))

    for src, name in copies:
        copy_file_atomic(src, out_dir / name)
    write_dataset(merged, out_dir / ANNOTATIONS_FILE, check_images=True)
    return load_dataset(out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.data.merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="dataset directories (or annotation files)")
    parser.add_argument("--out", type=Path, required=True, help="merged dataset directory (must not overlap a source)")
    parser.add_argument("--description", default="", help="info.description of the merged dataset")
    args = parser.parse_args(argv)
    try:
        ds = merge_datasets(args.sources, args.out, args.description)
    except (ValueError, FileNotFoundError) as exc:  # DatasetError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = Counter((s.domain, s.split) for s in ds.samples)
    print(f"wrote {ds.path}: {len(ds)} images from {len(args.sources)} sources; "
          + ", ".join(f"{d}/{s} {n}" for (d, s), n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
