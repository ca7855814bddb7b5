"""The machine a run ran on (CPU model, instruction-set level, cores, libraries, GPU) and the
torch device it runs on (:func:`resolve_device`).

CPU runs are deterministic per CPU kind only (oneDNN and ATen pick kernels by instruction set),
and their speed differs by kind, most of all where native bfloat16 is missing
(``docs/decisions.md``, "the quick profile's time"). So every timing and result names its CPU
and level.

The level is the lowest of what the CPU has and what oneDNN is allowed to use
(``ONEDNN_MAX_CPU_ISA``): holding oneDNN to ``AVX2`` on an AVX-512 machine (with
``ATEN_CPU_CAPABILITY=avx2`` for ATen's own kernels) measures what an AVX2-only CPU gets, and
the level then reads ``AVX2 (held; the CPU has AVX-512 BF16)``.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any, Final

#: Instruction-set levels, lowest first: what decides the CPU kernels' speed here.
LEVELS: Final = ("below AVX2", "AVX2", "AVX-512", "AVX-512 BF16", "AMX")
#: oneDNN's ``ONEDNN_MAX_CPU_ISA`` names (each also covers its ``_``-suffixed variants, e.g.
#: ``AVX2_VNNI``; most specific first) and the level each allows.
_ONEDNN_HOLDS: Final = (("AVX10_1_512_AMX", "AMX"), ("AVX512_CORE_AMX", "AMX"), ("AVX512_CORE_FP16", "AVX-512 BF16"),
                        ("AVX10_1_512", "AVX-512 BF16"), ("AVX512_CORE_BF16", "AVX-512 BF16"),
                        ("AVX512", "AVX-512"), ("AVX2", "AVX2"), ("AVX", "below AVX2"), ("SSE41", "below AVX2"))


def hardware_isa_level() -> str:
    """The highest level of :data:`LEVELS` this CPU supports (as torch detects it)."""
    import torch

    cpu = torch.cpu
    checks = (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"),
              ("AVX-512", "_is_avx512_supported"), ("AVX2", "_is_avx2_supported"))
    for level, name in checks:
        check = getattr(cpu, name, None)
        if check is not None and check():
            return level
    return "below AVX2"


def held_isa_level(value: str | None = None) -> str | None:
    """The level ``ONEDNN_MAX_CPU_ISA`` (or ``value``) allows, or ``None`` when it holds nothing
    (unset, empty or ``ALL``). An unknown value is an error, as it would be for oneDNN."""
    value = (os.environ.get("ONEDNN_MAX_CPU_ISA", "") if value is None else value).strip().upper()
    if value in ("", "ALL", "DEFAULT"):
        return None
    for prefix, level in _ONEDNN_HOLDS:
        if value == prefix or value.startswith(prefix + "_"):
            return level
    raise ValueError(f"ONEDNN_MAX_CPU_ISA={value!r} is not a oneDNN instruction-set name (e.g. AVX2, AVX512_CORE, ALL)")


def cpu_isa_level() -> str:
    """The level the CPU kernels run at: the hardware's, or a lower one that oneDNN is held to
    (then with the hardware's in brackets)."""
    hardware = hardware_isa_level()
    held = held_isa_level()
    if held is None or LEVELS.index(held) >= LEVELS.index(hardware):
        return hardware
    return f"{held} (held; the CPU has {hardware})"


def computes_bf16() -> bool:
    """Whether the CPU kernels compute bfloat16 natively (AVX-512 BF16 or AMX, not held lower):
    only then does bfloat16 autocast pay (without it, it is slower than float32)."""
    return cpu_isa_level() in ("AVX-512 BF16", "AMX")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` says elsewhere."""
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        name = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                     if line.startswith("model name")), name)
    return name


def machine() -> dict[str, Any]:
    """The CPU (model, level, cores), torch, and the GPU model, count and CUDA version of a run, for
    ``run.json`` and ``results.json``."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"cpu": cpu_name(), "isa_level": cpu_isa_level(), "cores": os.cpu_count(), "native_bf16": computes_bf16(),
            "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0) if gpus else None, "gpu_count": gpus,
            "cuda": torch.version.cuda if gpus else None}


#: The device names :func:`resolve_device` accepts (N: a GPU index).
DEVICES: Final[tuple[str, ...]] = ("auto", "cpu", "cuda", "cuda:N")


def resolve_device(device: str) -> str:
    """The torch device that ``device`` names: ``auto`` is the GPU when torch sees one, else the
    CPU; ``cpu``; ``cuda`` or ``cuda:N`` only when torch sees that GPU. Anything else (``gpu``, a
    GPU this machine lacks) is a one-line ValueError, so that a run stops at its start rather than
    in a traceback after its models have loaded. The library's one device chooser: the
    predictor's command line, :mod:`aims_lib.reproduce`, the 2D trainer and every notebook
    (:func:`aims_lib.workspace.notebook_context`) go through it."""
    if device == "cpu":
        return device
    cuda = None if device == "auto" else re.fullmatch(r"cuda(?::(\d+))?", device)
    if device != "auto" and cuda is None:
        raise ValueError(f"unknown device {device!r}: valid are {', '.join(DEVICES)} (N: a GPU index)")
    import torch

    available = torch.cuda.is_available()
    if cuda is None:  # auto
        return "cuda" if available else "cpu"
    if not available:
        raise ValueError(f"device {device!r}: torch sees no CUDA GPU on this machine "
                         "(torch.cuda.is_available() is False); use cpu or auto")
    count = torch.cuda.device_count()
    if cuda.group(1) is not None and int(cuda.group(1)) >= count:
        raise ValueError(f"device {device!r}: torch sees {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    return device
