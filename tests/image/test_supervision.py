"""supervisord restarts the notebook server and sshd when they die; the container returns to healthy."""

import pytest

from support import exec_out, health, wait_until


def pid_of(container, pattern):
    out = exec_out(container, ["pgrep", "-o", "-f", pattern], check=False).strip()
    return int(out) if out else None


@pytest.mark.parametrize("pattern", ["/usr/sbin/sshd -D", "jupyter-lab|jupyter lab"])
def test_killed_service_is_restarted_and_health_recovers(user_container, keys, pattern):
    container = user_container.container
    before = pid_of(container, pattern)
    assert before
    exec_out(container, ["kill", "-KILL", str(before)])
    after = wait_until(lambda: (p := pid_of(container, pattern)) and p != before and p, 60, what="restart")
    assert after != before
    wait_until(lambda: health(container) == "healthy" and container.exec_run(["devhub-healthcheck"]).exit_code == 0,
               90, what="healthy again")
    assert "ok" == user_container.ssh(keys["user"]).check("echo ok").strip()
