"""Who runs what inside the user container, with the hub's hardening flags."""

from support import exec_out


def processes(container):
    rows = exec_out(container.container, ["ps", "-eo", "pid=,uid=,comm=,args="]).splitlines()
    return [dict(zip(("pid", "uid", "comm", "args"), row.split(None, 3))) for row in rows]


def test_pid1_is_the_init_and_nothing_runs_as_root(user_container):
    procs = processes(user_container)
    by_pid = {p["pid"]: p for p in procs}
    assert by_pid["1"]["comm"] == "tini"
    assert [p for p in procs if p["uid"] == "0"] == []
    jupyter = [p for p in procs if "jupyter" in p["args"] and "lab" in p["args"]]
    sshd = [p for p in procs if p["comm"] == "sshd"]
    supervisord = [p for p in procs if "supervisord" in p["args"]]
    assert jupyter and sshd and supervisord, procs
    assert {p["uid"] for p in jupyter + sshd + supervisord} == {"1000"}


def test_hardened_container_is_healthy_with_no_capabilities(user_container):
    container = user_container.container
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    config = container.attrs["HostConfig"]
    assert config["ReadonlyRootfs"] and config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in config["SecurityOpt"]
    # Effective, permitted and bounding sets of every process are empty.
    status = exec_out(container, ["sh", "-c", "grep -h -E '^Cap(Eff|Prm|Bnd)' /proc/[0-9]*/status | sort -u"])
    values = {line.split()[1] for line in status.splitlines()}
    assert values == {"0000000000000000"}, status
    no_new_privs = exec_out(container, ["sh", "-c", "grep -h NoNewPrivs /proc/1/status"])
    assert no_new_privs.split()[1] == "1"


def test_root_filesystem_is_read_only_and_tmp_run_are_writable(user_container):
    out = exec_out(user_container.container, ["sh", "-c",
        "touch /etc/x 2>&1; touch /usr/x 2>&1; touch /tmp/x && echo tmp-ok; ls -ld /run/devhub"])
    assert out.count("Read-only file system") == 2
    assert "tmp-ok" in out
    listing = out.splitlines()[-1].split()
    assert listing[0] == "drwx------" and listing[2] == "jovyan"


def test_start_logs_no_errors(user_container):
    """A start's log holds what the services say, and no error: supervisord's control socket used to
    log a BrokenPipeError on every start (the early wake-up closed without reading the answer)."""
    log = user_container.container.logs().decode()
    assert "Jupyter Server" in log and "is running at" in log, log[-3000:]
    assert "success: sshd entered RUNNING state" in log, log[-3000:]
    assert "Extension Manager is 'readonly'" in log, log[-3000:]
    for error in ("error:", "Traceback", "BrokenPipeError", "[E "):
        assert error not in log, log[-3000:]


def test_refuses_to_run_as_root(resources, image):
    container = resources.run(image, user="0:0")
    result = container.wait(timeout=60)
    assert result["StatusCode"] != 0
    assert "refusing to run as root" in container.logs().decode()
