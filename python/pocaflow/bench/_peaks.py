"""Known peaks of the machines pocaflow is measured on, drawn as a line on the plots.

GPUs by the name the driver reports; CPUs by vendor and instruction set, per core, times the
threads pocaflow uses. Sources: /work/.library/device/H200.md and KINDS.md (H200: the
datasheet's dense bf16 and fp32 rates; 4.3 TB/s device-to-device copy and 790 TFLOP/s bf16
product measured on random data) and /work/shared/cpu/README.md (this 2-core AVX-512 Xeon:
FMA chains measured at 245 f32 / 123 f64 GFLOP/s per core)."""

from __future__ import annotations

#: GPU name fragment -> {(unit, dtype or None): (value, label)}.
GPU = {
    "H200": {
        ("TFLOP/s", "bf16"): (790.0, "bf16 product on random data, measured"),
        ("TFLOP/s", "f16"): (990.0, "dense f16, datasheet"),
        ("TFLOP/s", "f32"): (67.0, "fp32, datasheet"),
        ("GB/s", None): (4300.0, "device copy, measured"),
    },
    "H100": {
        ("TFLOP/s", "bf16"): (990.0, "dense bf16, datasheet"),
        ("TFLOP/s", "f16"): (990.0, "dense f16, datasheet"),
        ("TFLOP/s", "f32"): (67.0, "fp32, datasheet"),
        ("GB/s", None): (3350.0, "HBM3, datasheet"),
    },
}
#: GFLOP/s per core of an Intel CPU with AVX-512 (zmm FMA chains, measured).
INTEL_AVX512_PER_CORE = {"f32": 245.0, "f64": 123.0}


def peak(machine: dict, device: str, unit: str, dtype: str | None) -> tuple[float, str] | None:
    """The peak for ``unit`` (``GFLOP/s``, ``TFLOP/s``, ``GB/s``) and ``dtype`` on the
    machine described by ``machine`` (the run's meta), or None where none is known."""
    if device == "cuda":
        name = str(machine.get("gpu", ""))
        for fragment, table in GPU.items():
            if fragment in name:
                return table.get((unit, dtype if unit != "GB/s" else None))
        return None
    if unit != "GFLOP/s" or dtype not in INTEL_AVX512_PER_CORE:
        return None
    if machine.get("cpu_vendor") != "GenuineIntel" or "avx512f" not in machine.get("cpu_flags", []):
        return None
    threads = int(machine.get("threads") or 1)
    per_core = INTEL_AVX512_PER_CORE[dtype]
    return per_core * threads, f"{dtype} FMA peak, {threads} threads, measured"
