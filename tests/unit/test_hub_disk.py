"""devhub.disk: home sizes from Docker's accounting, the soft-limit notice, the hub's disk reserve."""

import asyncio
import os
import threading

import pytest

from devhub import disk
from devhub.settings import SettingsError, load

MiB = 1024**2


class FakeDocker:
    """What `docker system df -v` answers about volumes (the only call HomeUsage makes)."""

    def __init__(self, sizes):
        self.sizes = sizes

    def df(self):
        return {"Volumes": [{"Name": name, "UsageData": {"Size": size, "RefCount": 1}} for name, size in self.sizes.items()]}


def usage(sizes, soft_limit=50 * MiB, reserve=None):
    home = disk.HomeUsage(lambda user: f"devhub-home-{user}", soft_limit, 5, reserve, docker_client=lambda: FakeDocker(sizes))
    home.sizes = home.measure()
    return home


def test_sizes_and_the_soft_limit_notice():
    home = usage({"devhub-home-alice": 80 * MiB, "devhub-home-bob": 3 * MiB, "devhub-home-carol": -1, "other": 1})
    assert (home.of("alice"), home.of("bob"), home.of("carol"), home.of("dave")) == (80 * MiB, 3 * MiB, None, None)
    assert home.notice("alice") == ("Your home directory uses 80.0 MiB, above the soft limit of 50.0 MiB: please "
                                    "delete or move files you no longer need (the disk is shared with your team).")
    assert home.notice("bob") == home.notice("carol") == home.notice("dave") == ""
    assert usage({"devhub-home-alice": 80 * MiB}, soft_limit=0).notice("alice") == ""  # no limit, no notice


def test_admin_report_lists_everyone():
    report = usage({"devhub-home-alice": 80 * MiB, "devhub-home-bob": 3 * MiB}).report(["bob", "alice", "erin"])
    assert [(u["name"], u["bytes"], u["over_soft_limit"]) for u in report["users"]] == [
        ("alice", 80 * MiB, True), ("bob", 3 * MiB, False), ("erin", None, False)]
    assert report["soft_limit_bytes"] == 50 * MiB and report["free_bytes"] is None


def test_measurements_start_with_the_first_request_and_repeat():
    sizes = {"devhub-home-alice": 1}
    calls = threading.Semaphore(0)  # released by every measurement as it starts

    class Counting(FakeDocker):
        def df(self):
            calls.release()
            return super().df()

    home = disk.HomeUsage(lambda user: f"devhub-home-{user}", 0, 0.05, docker_client=lambda: Counting(sizes))
    home.ensure_running()  # no event loop: nothing starts

    async def measured(times):  # until `times` more measurements have started
        for _ in range(times):
            assert await asyncio.get_running_loop().run_in_executor(None, calls.acquire, True, 10)

    async def later():
        home.ensure_running()
        await measured(2)  # the second one started: the first one's sizes are in
        assert home.of("alice") == 1
        sizes["devhub-home-alice"] = 2
        await measured(2)  # the third read the new size, and the fourth started after it was kept
        assert home.of("alice") == 2
        home._task.cancel()

    asyncio.run(asyncio.wait_for(later(), 30))


def test_reserve_is_made_and_released_when_the_disk_fills(tmp_path, monkeypatch, caplog):
    reserve = disk.Reserve(tmp_path, 4 * MiB)
    assert reserve.check() == "made"
    assert os.stat(tmp_path / disk.RESERVE_FILE).st_size == 4 * MiB
    assert os.stat(tmp_path / disk.RESERVE_FILE).st_mode & 0o777 == 0o600
    assert reserve.check() == "held"
    monkeypatch.setattr(reserve, "free", lambda: 1 * MiB)  # a user filled the disk
    assert reserve.check() == "released" and not (tmp_path / disk.RESERVE_FILE).exists()
    assert "Disk nearly full (1.0 MiB free): released the hub's 4.0 MiB reserve" in caplog.text
    monkeypatch.setattr(reserve, "free", lambda: 6 * MiB)  # not yet twice the reserve: not taken back
    assert reserve.check() == "none"
    assert disk.Reserve(tmp_path, 0).check() == "none"


def test_settings():
    s = load({})
    assert (s.user_home_soft_limit, s.disk_usage_interval, s.hub_disk_reserve) == (0, 300, 256 * MiB)
    s = load({"USER_HOME_SOFT_LIMIT": "20G", "DISK_USAGE_INTERVAL": "60", "HUB_DISK_RESERVE": "off"})
    assert (s.user_home_soft_limit, s.disk_usage_interval, s.hub_disk_reserve) == (20 * 1024**3, 60, 0)
    with pytest.raises(SettingsError, match="USER_HOME_SOFT_LIMIT='lots' is invalid"):
        load({"USER_HOME_SOFT_LIMIT": "lots"})
    with pytest.raises(SettingsError, match="DISK_USAGE_INTERVAL='1' is invalid"):
        load({"DISK_USAGE_INTERVAL": "1"})
