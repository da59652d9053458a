"""Compiles every CUDA kernel module of pocaflow with NVRTC, as the library assembles them at run
time, without a GPU: `python scripts/check_kernels.py [sm_90]` after `pip install
nvidia-cuda-nvrtc` (13.x). Prints one line per failing module and exits 1 if any failed."""

import ctypes
import glob
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import nvidia

KERNELS = os.path.join(os.path.dirname(__file__), "..", "crates", "pocaflow", "src", "cuda", "kernels")
TYPES = ["Bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "F16", "BF16", "float", "double"]


def nvrtc():
    libs = []
    for root in nvidia.__path__:
        libs += glob.glob(os.path.join(root, "**", "libnvrtc.so*"), recursive=True)
    return ctypes.CDLL(sorted(p for p in libs if "builtins" not in p)[0])


LIB = nvrtc()


def read(name):
    with open(os.path.join(KERNELS, name)) as f:
        return f.read()


def compile_module(name, parts, options):
    src = "".join(read(p) for p in parts).encode()
    prog = ctypes.c_void_p()
    assert LIB.nvrtcCreateProgram(ctypes.byref(prog), src, name.encode(), 0, None, None) == 0
    opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    rc = LIB.nvrtcCompileProgram(prog, len(options), opts)
    size = ctypes.c_size_t()
    LIB.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    LIB.nvrtcGetProgramLog(prog, log)
    cubin = ctypes.c_size_t()
    if rc == 0:
        LIB.nvrtcGetCUBINSize(prog, ctypes.byref(cubin))
    LIB.nvrtcDestroyProgram(ctypes.byref(prog))
    return name, rc, log.value.decode(errors="replace"), cubin.value


def main():
    arch = sys.argv[1] if len(sys.argv) > 1 else "sm_90"
    base = [f"--gpu-architecture={arch}", "--std=c++17"]
    jobs = [
        ("bits", ["common.cuh", "bits.cu"], base),
        ("gemm", ["common.cuh", "gemm.cu"], base),
    ]
    jobs += [(f"values_{t}", ["common.cuh", "convert.cuh", "values.cu"], base + ["--fmad=false", f"-DELEM={t}"]) for t in TYPES]
    jobs += [
        (f"cast_{s}_{d}", ["common.cuh", "convert.cuh", "cast.cu"], base + [f"-DSRC={s}", f"-DDST={d}"])
        for s in TYPES
        for d in TYPES
    ]
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        results = list(pool.map(lambda j: compile_module(*j), jobs))
    failed = [r for r in results if r[1] != 0]
    for name, rc, log, _ in failed:
        print(f"FAILED {name} (nvrtc {rc}):\n{log}")
    warned = [r for r in results if r[1] == 0 and r[2].strip()]
    for name, _, log, _ in warned[:3]:
        print(f"warnings in {name}:\n{log}")
    print(f"{len(results) - len(failed)}/{len(results)} modules compiled for {arch}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
