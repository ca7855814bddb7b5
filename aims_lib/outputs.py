"""Where a command writes: never over an input, in a folder it can write, errors naming the output.

Shared by the command lines that read a user's files and write beside them
(``python -m aims_lib.predict``, ``python -m aims_lib.session``): they check their outputs
before any model loads, so that a long run never fails at its last step and no command
overwrites what it reads.
"""

from __future__ import annotations

import os
from pathlib import Path


def same_path(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder: equal once resolved (symbolic links, ``..``) or,
    when both exist, the same file (a case-insensitive file system spells it either way)."""
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def check_parent(path: Path, what: str) -> None:
    """The nearest existing folder above ``path`` must be a writable directory (the missing ones
    are created when writing); else a ValueError naming ``what`` and ``path``."""
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{what} {path}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: {ancestor} is not writable")


def naming(path: Path, exc: OSError) -> OSError:
    """``exc`` as an OSError that names the output ``path`` (not a temporary file beside it)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))
