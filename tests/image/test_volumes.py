"""The persistent home volume and the read-only datasets volume."""

import requests

from conftest import start_user_container
from support import exec_out


def test_datasets_are_read_only(user_container, keys):
    result = user_container.ssh(keys["user"]).run("touch /datasets/x")
    assert result.returncode != 0 and "Read-only file system" in result.stderr


def test_home_survives_container_recreation(resources, image, keys):
    first = start_user_container(resources, image, authorized_keys=keys["user"].public_line)
    ssh = first.ssh(keys["user"])
    ssh.check("echo my-work > notebook.txt && pip install --user --no-index --quiet /dev/null 2>/dev/null; "
              "echo 'history line' >> ~/.bash_history; mkdir -p ~/.vscode-server && touch ~/.vscode-server/marker")
    resources.remove_container(first.container)
    second = start_user_container(resources, image, authorized_keys=keys["user"].public_line,
                                  home=first.home, datasets=first.datasets)
    out = second.ssh(keys["user"]).check("cat notebook.txt; tail -1 ~/.bash_history; ls ~/.vscode-server")
    assert out.split("\n")[:3] == ["my-work", "history line", "marker"]


def test_new_home_volume_gets_the_skeleton(user_container, keys):
    out = user_container.ssh(keys["user"]).check("ls -a ~; stat -c %U ~")
    assert ".bashrc" in out and ".profile" in out and out.split()[-1] == "jovyan"


def test_standalone_run_serves_jupyterlab_behind_a_generated_token(resources, image):
    box = start_user_container(resources, image, hardened=False)
    base = f"http://127.0.0.1:{box.jupyter_port}"
    assert requests.get(f"{base}/api/status", timeout=5).status_code == 403
    logs = box.container.logs().decode()
    token = logs.split("?token=")[1].split()[0]
    status = requests.get(f"{base}/api/status", headers={"Authorization": f"token {token}"}, timeout=5)
    assert status.status_code == 200
    assert requests.get(f"{base}/lab?token={token}", timeout=10).status_code == 200
    kernels = requests.get(f"{base}/api/kernelspecs", headers={"Authorization": f"token {token}"}, timeout=5).json()
    assert kernels["default"] == "python3" and list(kernels["kernelspecs"]) == ["python3"]
    assert "jupyterhub-singleuser" not in exec_out(box.container, ["ps", "-eo", "args"])
