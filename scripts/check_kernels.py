"""Compiles every CUDA kernel module of pocaflow with NVRTC, as the library assembles them at run
time, without a GPU: `python scripts/check_kernels.py [sm_90]` after `pip install
nvidia-cuda-nvrtc` (13.x). Prints one line per failing module and exits 1 if any failed;
`ONLY=<prefix>` compiles only the modules whose name starts with it (e.g. `rowwise_`).

The elementwise, reduction and row-wise modules are compiled for every (op, dtype) the ops
layer can send: op names come from plan.rs, the domains below mirror ops/elementwise.rs,
ops/reduce.rs and ops/nn.rs (row-wise ops: every float type, each module with the register
variants cuda/kernels/rowwise.rs gives it)."""

import ctypes
import glob
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import nvidia

SRC = os.path.join(os.path.dirname(__file__), "..", "crates", "pocaflow", "src")
KERNELS = os.path.join(SRC, "cuda", "kernels")
TYPES = ["Bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "F16", "BF16", "float", "double"]
INTS = TYPES[1:9]
FLOATS = TYPES[9:]
NUMERIC = INTS + FLOATS


def op_names(enum):
    """The public names of the variants of `enum` in plan.rs, in declaration order."""
    with open(os.path.join(SRC, "plan.rs")) as f:
        text = f.read()
    body = re.search(r"\n    " + enum + r" \{\n(.*?)\n    \}", text, re.S).group(1)
    return re.findall(r'= "(\w+)",', body)


def unary_types(op):
    """The compute types of a unary op (ops/elementwise.rs: unary_domain)."""
    if op in ("abs", "negative", "square", "sign", "ceil", "floor", "round", "trunc"):
        return NUMERIC
    if op == "bitwise_invert":
        return ["Bool"] + INTS
    if op == "logical_not":
        return ["Bool"]
    if op in ("isnan", "isinf", "isfinite"):
        return TYPES
    return FLOATS


def binary_types(op):
    """The compute types of a binary op (ops/elementwise.rs: binary_domain and the compute
    dtype rules: logical ops in bool, integer true division in float64)."""
    if op in ("subtract", "floor_divide", "remainder", "pow"):
        return NUMERIC
    if op in ("atan2", "hypot", "copysign", "logaddexp", "nextafter", "divide") or op.endswith(
        "_backward"
    ):
        return FLOATS
    if op in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        return ["Bool"] + INTS
    if op in ("bitwise_left_shift", "bitwise_right_shift"):
        return INTS
    if op in ("logical_and", "logical_or", "logical_xor"):
        return ["Bool"]
    return TYPES


def reduce_types(op):
    """The operand types of a reduction (ops/reduce.rs)."""
    return ["Bool"] if op in ("all", "any") else TYPES


def elementwise_jobs(base):
    parts = ["common.cuh", "convert.cuh", "math.cuh", "elementwise.cu"]
    jobs = []
    unary_bool = {"signbit", "isnan", "isinf", "isfinite"}
    binary = op_names("BinaryOp")
    binary_bool = set(binary[binary.index("logical_and"):])
    for arity, enum, prefix, bools, types in (
        (1, "UnaryOp", "U", unary_bool, unary_types),
        (2, "BinaryOp", "B", binary_bool, binary_types),
    ):
        for op in op_names(enum):
            for t in types(op):
                out = "Bool" if op in bools else t
                defines = [f"-DOP={prefix}_{op.upper()}", f"-DELEM={t}", f"-DOUT={out}"]
                opts = base + ["--fmad=false"] + defines + [f"-DARITY={arity}"]
                jobs.append((f"{enum}_{op}_{t}", parts, opts))
    return jobs


def reduce_jobs(base):
    parts = ["common.cuh", "convert.cuh", "math.cuh", "reduce.cu"]
    return [
        (f"reduce_{op}_{t}", parts, base + ["--fmad=false", f"-DROP=R_{op.upper()}", f"-DELEM={t}"])
        for op in op_names("ReduceOp")
        for t in reduce_types(op)
    ]


def loss_jobs(base):
    parts = ["common.cuh", "convert.cuh", "math.cuh", "loss.cu"]
    return [(f"loss_{t}", parts, base + ["--fmad=true", f"-DELEM={t}"]) for t in FLOATS]


def row_variants(op, t):
    """The register variants of a row-wise module (kernels/rowwise.rs: row_variants): all 11
    for the forward ops of 2- and 4-byte types, 10 for their backward ops, 9 for float64."""
    if t == "double":
        return 9
    return 11 - op.endswith("_backward")


def rowwise_jobs(base):
    parts = ["common.cuh", "convert.cuh", "math.cuh", "rowwise.cu"]
    return [
        (
            f"rowwise_{op}_{t}",
            parts,
            base + [f"-DRO=ROW_{op.upper()}", f"-DELEM={t}", f"-DVARIANTS={row_variants(op, t)}"],
        )
        for op in op_names("RowOp")
        for t in FLOATS
    ]


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
    only = os.environ.get("ONLY", "")
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
    jobs += elementwise_jobs(base) + reduce_jobs(base) + loss_jobs(base) + rowwise_jobs(base)
    jobs = [j for j in jobs if j[0].startswith(only)]
    with ThreadPoolExecutor(int(os.environ.get("JOBS", os.cpu_count()))) as pool:
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
