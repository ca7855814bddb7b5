"""``python -m aims_lib.body --out FILE.pkl``: write the procedural infant as an SMPL pickle.

The file loads with ``smplx.SMPL(model_path=FILE.pkl)`` as it is; repeated runs write the same
bytes, atomically (an interrupted run leaves the old file, never a truncated one).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aims_lib.body.model import procedural_arrays
from aims_lib.body.smpl_file import write_smpl_pickle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.body", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="path of the .pkl to write")
    args = parser.parse_args(argv)
    path = write_smpl_pickle(procedural_arrays(), args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
