"""TensorFlow 2.9.3 and its CUDA 11 user space, seen from an SSH login (same environment as Jupyter)."""

import json
import subprocess

import pytest


def test_tensorflow_version_over_ssh(user_container, keys):
    out = user_container.ssh(keys["user"]).check('python -c "import tensorflow as tf; print(tf.__version__)"')
    assert out.strip().splitlines()[-1] == "2.9.3"


def test_cuda_libraries_are_registered_with_the_dynamic_linker(user_container, keys):
    listing = user_container.ssh(keys["user"]).check("ldconfig -p")
    for soname in ("libcudart.so.11.0", "libcublas.so.11", "libcudnn.so.8"):
        assert f"{soname} (libc6,x86-64)" in listing, soname


def test_every_cuda_library_tf_dlopens_resolves(user_container, keys):
    report = json.loads(user_container.ssh(keys["user"]).run_script("check_cuda_libs.py"))
    assert report["LD_LIBRARY_PATH"] is None
    assert report["build_info"]["cuda_version"].startswith("11.")
    assert report["build_info"]["cudnn_version"] == "8"
    assert set(report["libraries"].values()) == {"loaded"}, report["libraries"]
    assert report["cudnn_version"] // 1000 == 8
    assert report["wheels"]["nvidia-cuda-runtime-cu11"].startswith("11.")
    assert report["wheels"]["nvidia-cudnn-cu11"].startswith("8.9.")


def test_keras_trains_on_cpu(user_container, keys):
    result = json.loads(user_container.ssh(keys["user"]).run_script("train_keras.py", "CPU").splitlines()[-1])
    assert result["device"].endswith("CPU:0")
    assert result["last_loss"] < result["first_loss"] * 0.6
    assert result["accuracy"] > 0.9


def gpu_available(docker_client) -> str | None:
    """Why no GPU test can run here, or None when Docker can give a container a GPU."""
    runtimes = docker_client.info().get("Runtimes", {})
    if "nvidia" not in runtimes:
        return "no NVIDIA GPU runtime in this Docker engine (no GPU on this machine)"
    if subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
        return "nvidia-smi finds no GPU on this machine"
    return None


@pytest.mark.gpu
def test_keras_trains_on_gpu(resources, image, keys, docker_client):
    import docker

    reason = gpu_available(docker_client)
    if reason:
        pytest.skip(reason)
    from conftest import start_user_container

    box = start_user_container(resources, image, authorized_keys=keys["user"].public_line,
                               device_requests=[docker.types.DeviceRequest(count=1, capabilities=[["gpu"]])])
    result = json.loads(box.ssh(keys["user"]).run_script("train_keras.py", "GPU", timeout=900).splitlines()[-1])
    assert "GPU" in result["weights_device"] and result["accuracy"] > 0.9
