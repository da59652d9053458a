"""Known peaks of the machines pocaflow is measured on, drawn as a line on the plots.

GPUs by the name the driver reports; CPUs by vendor and instruction set, per core, times the
threads pocaflow uses. Sources: /work/.library/device/H200.md and KINDS.md (H200: the
datasheet's dense bf16 and fp32 rates; 4.3 TB/s device-to-device copy and 790 TFLOP/s bf16
product measured on random data), /work/shared/cpu/README.md (the 2-core AVX-512 Xeon of the
CPU machines: FMA chains measured at 245 f32 / 123 f64 GFLOP/s per core) and
bench/results/cpu-2026-11-25.md (the same kind of machine as an AMD EPYC with AVX-512: 253 /
127 per core by bench_cpu's probe)."""

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
#: GFLOP/s per core of a CPU with AVX-512 by vendor (zmm FMA chains, measured).
AVX512_PER_CORE = {
    "GenuineIntel": {"f32": 245.0, "f64": 123.0},
    "AuthenticAMD": {"f32": 253.0, "f64": 127.0},
}


def peak(machine: dict, device: str, unit: str, dtype: str | None) -> tuple[float, str] | None:
    """The peak for ``unit`` (``GFLOP/s``, ``TFLOP/s``, ``GB/s``) and ``dtype`` on the
    machine described by ``machine`` (the run's meta), or None where none is known."""
    if device == "cuda":
        name = str(machine.get("gpu", ""))
        for fragment, table in GPU.items():
            if fragment in name:
                return table.get((unit, dtype if unit != "GB/s" else None))
        return None
    per_core = AVX512_PER_CORE.get(machine.get("cpu_vendor", ""), {}).get(dtype or "")
    if unit != "GFLOP/s" or per_core is None or "avx512f" not in machine.get("cpu_flags", []):
        return None
    threads = int(machine.get("threads") or 1)
    return per_core * threads, f"{dtype} FMA peak, {threads} threads, measured"
