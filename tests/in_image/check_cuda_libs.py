"""Inside the image: every CUDA library TF 2.9 dlopens resolves through the dynamic linker, and the
installed major versions are the ones TensorFlow was built for. Prints a JSON report; exits non-zero
on any failure. Runs with no LD_LIBRARY_PATH, as any process in the container would."""

import ctypes
import importlib.metadata
import json
import os
import sys

import tensorflow as tf

info = tf.sysconfig.get_build_info()
cuda_major = info["cuda_version"].split(".")[0]
cudnn_major = info["cudnn_version"].split(".")[0]
# The sonames TF 2.9's dso_loader asks for (tensorflow/stream_executor/platform/default/dso_loader.cc).
wanted = [
    f"libcudart.so.{cuda_major}.0",
    f"libcublas.so.{cuda_major}",
    f"libcublasLt.so.{cuda_major}",
    "libcufft.so.10",
    "libcurand.so.10",
    f"libcusolver.so.{cuda_major}",
    "libcusparse.so.11",
    f"libcudnn.so.{cudnn_major}",
    f"libcupti.so.{info['cuda_version']}",
]
report = {"build_info": {k: info[k] for k in ("cuda_version", "cudnn_version", "is_cuda_build")},
          "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"), "libraries": {}}
ok = info["is_cuda_build"] and cuda_major == "11" and cudnn_major == "8"
for name in wanted:
    try:
        lib = ctypes.CDLL(name)
        report["libraries"][name] = "loaded"
    except OSError as exc:
        report["libraries"][name] = f"FAILED: {exc}"
        ok = False
# The versions installed: cuDNN reports its own; the CUDA wheels carry theirs (cudart's
# cudaRuntimeGetVersion needs a driver, which this check must not).
cudnn = ctypes.CDLL(f"libcudnn.so.{cudnn_major}")
cudnn.cudnnGetVersion.restype = ctypes.c_size_t
report["cudnn_version"] = cudnn.cudnnGetVersion()
report["wheels"] = {d.metadata["Name"]: d.version for d in importlib.metadata.distributions()
                    if d.metadata["Name"].startswith("nvidia-")}
cuda_wheels = [v for n, v in report["wheels"].items() if n.startswith("nvidia-cu") and "cudnn" not in n]
ok = ok and report["cudnn_version"] // 1000 == 8 and all(v.split(".")[0] in ("10", "11") for v in cuda_wheels)
ok = ok and report["wheels"]["nvidia-cuda-runtime-cu11"].startswith("11.")
print(json.dumps(report, indent=1))
sys.exit(0 if ok else 1)
