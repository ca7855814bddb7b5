"""The run's machine record: the CPU's instruction-set level, and oneDNN held below it (issue 26)."""

import pytest

from aims_lib import machine


@pytest.mark.parametrize(("value", "level"), [
    ("", None), ("ALL", None), ("avx2", "AVX2"), ("AVX2_VNNI", "AVX2"), ("AVX512_CORE", "AVX-512"),
    ("AVX512_CORE_VNNI", "AVX-512"), ("AVX512_CORE_BF16", "AVX-512 BF16"), ("AVX512_CORE_AMX", "AMX"),
    ("SSE41", "below AVX2"), ("AVX", "below AVX2"),
])
def test_onednn_holds_map_to_levels(value, level):
    assert machine.held_isa_level(value) == level


def test_an_unknown_hold_names_the_variable_and_value():
    with pytest.raises(ValueError, match=r"ONEDNN_MAX_CPU_ISA='AVX3' is not"):
        machine.held_isa_level("avx3")


def test_a_hold_below_the_hardware_is_reported_and_turns_bf16_off(monkeypatch):
    monkeypatch.setattr(machine, "hardware_isa_level", lambda: "AVX-512 BF16")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert machine.cpu_isa_level() == "AVX-512 BF16" and machine.computes_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert machine.cpu_isa_level() == "AVX2 (held; the CPU has AVX-512 BF16)"
    assert not machine.computes_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")  # a hold above the hardware holds nothing
    assert machine.cpu_isa_level() == "AVX-512 BF16"


def test_the_machine_record_names_cpu_level_and_cores():
    record = machine.machine()
    assert record["isa_level"].split(" (")[0] in machine.LEVELS
    assert record["cores"] >= 1 and record["cpu"]
    assert record["native_bf16"] == machine.computes_bf16()


def test_the_machine_record_names_the_gpus(monkeypatch):
    import torch

    assert machine.machine()["gpu_count"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H100 80GB HBM3")
    record = machine.machine()
    assert (record["gpu"], record["gpu_count"], record["cuda"]) == ("NVIDIA H100 80GB HBM3", 4, torch.version.cuda)


def test_reproduce_refuses_an_unknown_hold_before_notebook_01(tmp_path, monkeypatch, capsys):
    from aims_lib import reproduce

    def never(*args, **kwargs):
        raise AssertionError("a notebook ran although ONEDNN_MAX_CPU_ISA was refused")

    monkeypatch.setattr(reproduce, "run_notebooks", never)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx3")
    with pytest.raises(SystemExit) as exc:
        reproduce.main(["--profile", "smoke", "--device", "cpu", "--reports", str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "python -m aims_lib.reproduce: error: ONEDNN_MAX_CPU_ISA='AVX3' is not a oneDNN instruction-set name "
        "(e.g. AVX2, AVX512_CORE, ALL)"]
    assert not any(tmp_path.iterdir())
