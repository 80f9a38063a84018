"""The guest OS in memory: boot records, drivers and services by module name, shutdown kinds,
install, quiesce, disk growth."""

from __future__ import annotations

import json

import pytest

from fakes.guest import app as journal
from fakes.guest.drivers import DriverError
from fakes.guest.errors import GuestError
from fakes.guest.offline import install_os
from fakes.guest.registry import read_registry
from tests.helpers import wait_for
from tests.unit.guest.modules import counting_filter

FILTER = "tests.unit.guest.modules.counting_filter"
SERVICE = "tests.unit.guest.modules.beacon_service"
MiB = 1 << 20


def test_first_boot_after_install(machine):
    m = machine()
    guest = m.boot()
    status = guest.status()
    assert status["boot_count"] == 1
    assert status["previous_shutdown_clean"] is True
    assert status["hostname"] == "vm-0.lab.local"
    assert read_registry(m.devices[0]).state == "running"
    assert status["app"]["state"] == "running"


def test_install_is_idempotent(machine):
    m = machine()
    before = bytes(m.devices[0].data[: 1 << 20])
    install_os(m.devices, m.config, now=99.0)
    assert bytes(m.devices[0].data[: 1 << 20]) == before


def test_clean_shutdown_then_boot(machine):
    m = machine(app_tps=0)
    guest = m.boot()
    for _ in range(5):
        guest.app.commit()
    guest.shutdown()
    assert read_registry(m.devices[0]).state == "clean"
    again = m.boot()
    assert again.previous_shutdown_clean is True
    assert again.status()["boot_count"] == 2
    assert again.app.last_check.ok and again.app.last_check.committed_txn == 5


def test_crash_then_boot_knows_it_was_unclean(machine):
    m = machine()
    guest = m.boot()
    guest.app.commit()
    guest.crash()
    again = m.boot()
    assert again.previous_shutdown_clean is False
    assert again.app.last_check.ok


def test_drivers_load_by_module_name_and_see_every_write(machine):
    m = machine(churn_mb_s=0)
    guest = m.boot()
    counting_filter.INSTANCES.clear()  # other tests in this process may have loaded it too
    guest.install([FILTER], [SERVICE], {SERVICE: {"k": "v"}})
    filters = [f for f in counting_filter.INSTANCES if f.api.vm_name == m.config.vm_name]
    assert [f.disk_index for f in filters] == [0, 1]
    assert guest.status()["disks"][1]["drivers"] == [FILTER]
    guest.app.commit()  # records and a superblock on the last disk
    assert filters[1].writes >= 2
    started = json.loads((guest.run_dir / "spill" / SERVICE / "started.json").read_text())
    assert started["settings"] == {"k": "v"} and started["disks"] == 2
    guest.shutdown()
    stopped = json.loads((guest.run_dir / "spill" / SERVICE / "stopped.json").read_text())
    assert stopped == {"clean": True, "boot_count": 1}
    assert filters[0].writes >= 1  # the clean-shutdown record went through the filter

    # the registry on disk 0 says what to load: the next boot loads them by name
    reg = read_registry(m.devices[0])
    assert reg.drivers == [FILTER] and reg.services == [SERVICE]
    counting_filter.INSTANCES.clear()
    again = m.boot()
    assert len(counting_filter.INSTANCES) == 2
    assert counting_filter.INSTANCES[0].writes == 1  # the boot record, through the filter
    assert counting_filter.INSTANCES[0].previous_shutdown_clean is True
    assert SERVICE in again.services


def test_a_driver_that_cannot_load_does_not_stop_the_boot(machine):
    m = machine()
    guest = m.boot()
    with pytest.raises(DriverError, match="cannot be loaded"):
        guest.install(["tests.unit.guest.modules.no_such_driver"], [], {})
    with pytest.raises(DriverError, match="no attach"):
        guest.install([SERVICE], [], {})  # a service is not a driver
    assert read_registry(m.devices[0]).drivers == []  # nothing recorded
    # a registry that names a broken driver (e.g. removed from this machine)
    reg = guest.registry
    reg.drivers.append("tests.unit.guest.modules.no_such_driver")
    guest.save_settings("x", {})
    guest.shutdown()
    again = m.boot()
    assert again.state == "running"
    assert "cannot be loaded" in again.status()["load_errors"][0]


def test_uninstall_takes_drivers_away_at_the_next_boot(machine):
    m = machine()
    guest = m.boot()
    guest.install([FILTER], [SERVICE], {})
    assert guest.uninstall([FILTER], [SERVICE]) is True  # reboot required
    assert SERVICE not in guest.services
    guest.shutdown()
    again = m.boot()
    assert again.status()["disks"][0]["drivers"] == []


def test_quiesce_flushes_and_holds_writes(machine):
    m = machine(quiesce=True, app_tps=200, churn_mb_s=1)
    guest = m.boot()
    wait_for(lambda: guest.app.commits > 2 and guest.workload.writes > 2, 10)
    with guest.quiesce(timeout=10):
        assert guest.app.state == "frozen"
        assert guest.workload.status()["held"]
        app_disk = guest.disks[-1]
        snapshot = app_disk.read(0, app_disk.size)  # what a snapshot taken now would hold
        commits, writes = guest.app.commits, guest.workload.writes
    assert guest.app.commits >= commits and guest.workload.writes >= writes
    copy = type(m.devices[-1])(app_disk.size)
    copy.data[:] = snapshot
    assert journal.check(copy, guest.app_area.offset).ok
    wait_for(lambda: guest.app.commits > commits, 10, message="commits after release")


def test_quiesce_times_out_and_releases(machine):
    m = machine(quiesce=True)
    guest = m.boot()
    with pytest.raises(GuestError) as err, guest.quiesce(timeout=0.05):
        wait_for(lambda: not guest.status()["quiesced"], 10, message="auto release")
    assert err.value.kind == "timeout"
    assert guest.app.state == "running"


def test_quiesce_unsupported(machine):
    guest = machine(quiesce=False).boot()
    with pytest.raises(GuestError) as err, guest.quiesce():
        pass
    assert err.value.kind == "not_supported"


def test_disk_grows(machine):
    m = machine(churn_mb_s=0)
    guest = m.boot()
    m.devices[1].resize(64 * MiB)  # the hypervisor grew the file
    guest.disk_resized(1, 64 * MiB)
    assert guest.status()["disks"][1]["size"] == 64 * MiB
    assert guest.workload.generator.areas[-1].end == 64 * MiB
    with pytest.raises(GuestError) as err:
        guest.disk_resized(1, 32 * MiB)
    assert err.value.kind == "bad_request"
    with pytest.raises(GuestError):
        guest.disk_resized(7, 64 * MiB)


def test_a_guest_without_an_os_does_not_boot(tmp_path):
    from fakes.guest.blockdev import MemoryDevice
    from fakes.guest.config import DiskRef, GuestConfig
    from fakes.guest.registry import SystemAreaError
    from fakes.guest.system import GuestOS, WallClock

    config = GuestConfig(
        "id", "blank", "linux", "blank", [], [DiskRef("d", "", 4 * MiB)], str(tmp_path), {}
    )
    with pytest.raises(SystemAreaError, match="no operating system"):
        GuestOS(config, WallClock(), [MemoryDevice(4 * MiB)]).boot()


def test_systemctl_restarts_a_service_and_the_process_list_shows_it(machine):
    m = machine(churn_mb_s=0)
    guest = m.boot()
    guest.install([], [SERVICE], {})
    spill = guest.run_dir / "spill" / SERVICE
    before = [p for p in guest.processes.list() if p["name"] == "beacon_service"]
    assert len(before) == 1 and before[0]["exit_code"] is None
    pid = guest.programs.start("root", "/bin/systemctl", "restart beacon_service", None, None)
    wait_for(lambda: guest.processes.list([pid])[0]["exit_code"] is not None, timeout=10)
    assert guest.processes.list([pid])[0]["exit_code"] == 0
    assert json.loads((spill / "stopped.json").read_text())["clean"] is True
    after = [p for p in guest.processes.list() if p["name"] == "beacon_service"]
    assert [p["exit_code"] for p in after] == [0, None]  # the old process ended, a new one runs
    assert guest.control_service("stop", "no-such-service") == 5
    guest.shutdown()
