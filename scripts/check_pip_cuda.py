"""Checks that pocaflow runs on CUDA libraries from pip wheels alone (run by gpu-run.sh's
``pipcuda`` step with the system toolkit hidden): the libraries come from site-packages and a
matmul is correct."""

import sys

import numpy as np

import pocaflow as pf

print("preloaded from pip wheels:", pf._cuda_libs.LOADED)
assert pf.cuda.is_available(), pf.cuda.unavailable_reason()
a = np.random.default_rng(0).standard_normal((256, 256), dtype=np.float32)
c = (pf.Tensor.from_array(a, device="cuda") @ pf.Tensor.from_array(a, device="cuda")).numpy()
rel = np.linalg.norm(c - a.astype(np.float64) @ a) / np.linalg.norm(a.astype(np.float64) @ a)
maps = open("/proc/self/maps").read()
wanted = ("cublasLt", "nvrtc")
libs = sorted({ln.split()[-1] for ln in maps.splitlines() if any(w in ln for w in wanted)})
print("mapped:", *libs, sep="\n  ")
assert libs and all("site-packages" in p for p in libs), "CUDA libraries did not come from pip"
assert rel <= 2e-6, rel
print(f"pip-only CUDA works: 256^2 f32 relative error {rel:.2e}")
sys.exit(0)
