"""DevhubSpawner's SSH side: the gateway's client key into the container, the gateway attached to the
user network, the container's host key read through the Docker API into the state, and the user's
keys deleted with the user. Docker is the in-memory fake of test_hub_spawner."""

import io
import logging
import tarfile
from datetime import datetime
from types import SimpleNamespace

import docker.errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devhub.ssh_keystore import KeyStore, owner_of
from test_hub_spawner import FakeUser, created, fake_docker, make_spawner, not_found, run  # noqa: F401 - fixture

HOST_KEY_PATH = "/home/jovyan/.local/share/devhub/ssh/ssh_host_ed25519_key.pub"
SSHGW_ID = "g" * 64


def ed_line(comment=""):
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return (key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " " + comment).strip()


def tar_of(name, data=b"", symlink_to=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if symlink_to:
            info.type = tarfile.SYMTYPE
            info.linkname = symlink_to
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def serve_file(fake, tar_bytes):
    """Make the fake Docker answer get_archive for the host key path with `tar_bytes` (None: 404)."""
    asked = []

    def get_archive(container, path, **kw):
        asked.append((container, path))
        if tar_bytes is None:
            raise not_found(f"Could not find the file {path} in container {container}")
        return iter([tar_bytes[:100], tar_bytes[100:]]), {"name": path.rsplit("/", 1)[1]}

    fake.get_archive = get_archive
    return asked


def gateway_key_file(tmp_path, text):
    path = tmp_path / "sshgw-state" / "gateway_client_key.pub"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return str(path)


def test_gateway_client_key_is_the_only_authorized_key(tmp_path, fake_docker):
    line = ed_line("devhub-gateway")
    sp = make_spawner(tmp_path, SSH_GATEWAY_CLIENT_KEY_FILE=gateway_key_file(tmp_path, "\n" + line + "  \n"))
    run(sp.start())
    assert created(fake_docker)["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == line


def test_gateway_key_read_at_each_start(tmp_path, fake_docker):
    path = gateway_key_file(tmp_path, ed_line("old"))
    sp = make_spawner(tmp_path, SSH_GATEWAY_CLIENT_KEY_FILE=path)
    run(sp.start())
    run(sp.stop())
    new = ed_line("new")
    gateway_key_file(tmp_path, new)
    run(sp.start())
    creates = [c[2] for c in fake_docker.calls if c[0] == "create_container"]
    assert creates[-1]["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == new


def test_missing_gateway_key_warns_and_passes_none(tmp_path, fake_docker, caplog):
    missing = tmp_path / "nowhere" / "gateway_client_key.pub"
    sp = make_spawner(tmp_path, SSH_GATEWAY_CLIENT_KEY_FILE=str(missing))
    with caplog.at_level(logging.WARNING):
        run(sp.start())
    assert created(fake_docker)["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == ""
    assert f"SSH gateway client key {missing} is not readable" in caplog.text


def test_invalid_gateway_key_warns_and_passes_none(tmp_path, fake_docker, caplog):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    for text in ('command="sh" ' + ed_line(), weak, ed_line() + "\n" + ed_line()):
        fake_docker.calls.clear()
        sp = make_spawner(tmp_path, SSH_GATEWAY_CLIENT_KEY_FILE=gateway_key_file(tmp_path, text))
        with caplog.at_level(logging.WARNING):
            run(sp.start())
        assert created(fake_docker)["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == ""
        assert "is invalid" in caplog.text
        run(sp.stop())


def test_no_key_and_no_gateway_network_with_gateway_off(tmp_path, fake_docker):
    add_gateway_container(fake_docker)
    sp = make_spawner(tmp_path, SSH_GATEWAY="0", EGRESS="off", SSH_GATEWAY_CLIENT_KEY_FILE=gateway_key_file(tmp_path, ed_line()))
    assert sp.connect_services == ["hub", "proxy"]
    run(sp.start())
    assert created(fake_docker)["environment"]["DEVHUB_SSH_AUTHORIZED_KEYS"] == ""
    assert not any(c[0] == "connect" and c[1] == SSHGW_ID for c in fake_docker.calls)


def add_gateway_container(fake):
    labels = {"com.docker.compose.project": "devhub", "com.docker.compose.service": "sshgw"}
    fake.containers_[SSHGW_ID] = {"Id": SSHGW_ID, "Name": "sshgw", "Image": "sha256:gw",
                                  "Config": {"Labels": labels, "Env": []},
                                  "State": {"Status": "running", "Running": True}, "NetworkSettings": {"Networks": {}}}


def test_gateway_attached_to_user_network(tmp_path, fake_docker):
    add_gateway_container(fake_docker)
    sp = make_spawner(tmp_path)
    assert sp.connect_services == ["hub", "proxy", "sshgw", "egress"]
    run(sp.start())
    assert ("connect", SSHGW_ID, "devhub-user-alice", ["sshgw"]) in fake_docker.calls
    # alice's server, the gateway, hub and proxy: no other user's container.
    assert set(fake_docker.networks_["devhub-user-alice"]["Containers"]) == {sp.container_id, SSHGW_ID, "h" * 64, "p" * 64}


def started(tmp_path, fake_docker, **env):
    sp = make_spawner(tmp_path, **env)
    ip, _ = run(sp.start())
    sp.server.ip = ip  # what JupyterHub records from start()'s return value
    return sp


def test_route_with_host_key_from_home_volume(tmp_path, fake_docker):
    sp = started(tmp_path, fake_docker)
    key = ed_line("jovyan@devhub-user-alice")
    asked = serve_file(fake_docker, tar_of("ssh_host_ed25519_key.pub", (key + "\n").encode()))
    route = run(sp.ssh_route())
    assert route == {"host": "10.99.0.2", "port": 2222, "host_key": key.rsplit(" ", 1)[0], "user": "jovyan",
                     "container": "devhub-user-alice"}
    assert asked == [(sp.container_id, HOST_KEY_PATH)]
    # Kept: not read again, and in the state the hub stores (survives a hub restart).
    run(sp.ssh_route())
    assert len(asked) == 1
    state = sp.get_state()
    assert state["ssh_host_key"] == route["host_key"]
    restarted = make_spawner(tmp_path)
    restarted.load_state(state)
    restarted.server.ip = "10.99.0.2"
    assert run(restarted.ssh_route())["host_key"] == route["host_key"]
    assert len(asked) == 1
    # A new start forgets it (the container is new) and reads it again.
    run(sp.stop())
    new_key = ed_line()
    serve_file(fake_docker, tar_of("ssh_host_ed25519_key.pub", new_key.encode()))
    run(sp.start())
    assert "ssh_host_key" not in sp.get_state()
    assert run(sp.ssh_route())["host_key"] == new_key
    sp.clear_state()
    assert "ssh_host_key" not in sp.get_state()


def test_route_without_host_key_yet(tmp_path, fake_docker):
    sp = started(tmp_path, fake_docker)
    serve_file(fake_docker, None)  # sshd has not written it yet
    assert run(sp.ssh_route())["host_key"] == ""
    assert "ssh_host_key" not in sp.get_state()
    key = ed_line()
    serve_file(fake_docker, tar_of("ssh_host_ed25519_key.pub", key.encode()))
    assert run(sp.ssh_route())["host_key"] == key


def test_route_refuses_planted_host_key_files(tmp_path, fake_docker, caplog):
    sp = started(tmp_path, fake_docker)
    for tar_bytes in (
        tar_of("ssh_host_ed25519_key.pub", symlink_to="/etc/shadow"),
        tar_of("ssh_host_ed25519_key.pub", b"x" * 20000),
        tar_of("ssh_host_ed25519_key.pub", b'command="sh" ' + ed_line().encode()),
        tar_of("ssh_host_ed25519_key.pub", ed_line().encode() + b"\n" + ed_line().encode()),
    ):
        serve_file(fake_docker, tar_bytes)
        with caplog.at_level(logging.WARNING):
            assert run(sp.ssh_route())["host_key"] == ""
    ecdsa = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    serve_file(fake_docker, tar_of("ssh_host_ed25519_key.pub", ecdsa.encode()))
    assert run(sp.ssh_route())["host_key"] == ""
    assert "Cannot read the SSH host key" in caplog.text and "expected ssh-ed25519" in caplog.text


def test_no_route_when_not_running(tmp_path, fake_docker):
    sp = make_spawner(tmp_path)
    assert run(sp.ssh_route()) is None


def test_route_falls_back_to_container_name(tmp_path, fake_docker):
    sp = make_spawner(tmp_path)
    run(sp.start())  # server.ip not recorded
    serve_file(fake_docker, tar_of("ssh_host_ed25519_key.pub", ed_line().encode()))
    assert run(sp.ssh_route())["host"] == "devhub-user-alice"


def test_docker_error_reading_host_key_is_not_fatal(tmp_path, fake_docker):
    sp = started(tmp_path, fake_docker)

    def broken(*a, **k):
        raise docker.errors.APIError("boom", response=SimpleNamespace(status_code=500, reason="Server Error", url="http://docker/archive"))

    fake_docker.get_archive = broken
    assert run(sp.ssh_route())["host_key"] == ""
