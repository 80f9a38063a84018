"""A real guest process: status, guest operations, lab programs and drivers, clean shutdown and
hard power-off, reboot, disk growth, re-attaching after the hypervisor restarted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from fakes.guest import host
from fakes.guest.blockdev import SparseFileDevice
from fakes.guest.errors import GuestError
from fakes.guest.registry import read_registry
from tests.helpers import wait_for

ROOT = ("root", "Guest1!linux")
ADMIN = ("Administrator", "Guest1!win")
FILTER = "tests.unit.guest.modules.counting_filter"
SERVICE = "tests.unit.guest.modules.beacon_service"
INSTALLER = b"#!drlab-program tests.unit.guest.modules.installer\n# test installer\n"


def registry_of(config):
    dev = SparseFileDevice(config.disks[0].path, readonly=True)
    try:
        return read_registry(dev)
    finally:
        dev.close()


def exit_code(handle, creds, pid):
    def ended():
        (proc,) = handle.list_processes(*creds, [pid])
        return proc if proc["exit_code"] is not None else None

    return wait_for(ended, 15, message=f"guest pid {pid} to end")["exit_code"]


def app_commits(handle) -> int:
    return handle.status()["app"]["commits_this_boot"]


def test_status_and_guest_operations(vms):
    config = vms()
    guest = host.start(config)
    status = guest.status()
    assert status["running"] and status["tools"] == "guestToolsRunning"
    assert status["hostname"] == "lin-app-01.lab.local"
    assert status["ip_addresses"] == ["10.10.0.31"]
    assert status["boot_count"] == 1 and status["previous_shutdown_clean"] is True
    assert isinstance(status["heartbeat"], float)
    assert vms.registered() == ["guest-lin-app-01"]

    guest.put_file(*ROOT, "/tmp/payload.bin", b"\x00\x01\x02", overwrite=False)
    assert guest.get_file(*ROOT, "/tmp/payload.bin") == b"\x00\x01\x02"
    with pytest.raises(GuestError) as err:
        guest.put_file(*ROOT, "/tmp/payload.bin", b"", overwrite=False)
    assert err.value.kind == "file_exists"
    pid = guest.start_program(*ROOT, "/bin/sh", '-c "exit 4"')
    assert exit_code(guest, ROOT, pid) == 4
    with pytest.raises(GuestError) as err:
        guest.start_program("root", "not-the-password", "/bin/true")
    assert err.value.kind == "invalid_login"
    with pytest.raises(GuestError) as err:
        guest.list_processes("root", "not-the-password")
    assert err.value.kind == "invalid_login"

    guest.shutdown()
    assert not guest.running()
    assert guest.status() == {**guest.status(), "running": False, "tools": "guestToolsNotRunning"}
    with pytest.raises(GuestError) as err:
        guest.put_file(*ROOT, "/tmp/x", b"", overwrite=True)
    assert err.value.kind == "not_running"


def test_windows_guest_operations_and_quiesce(vms):
    config = vms("win-app-01", "windows", quiesce=True, app_tps=50)
    guest = host.start(config)
    pid = guest.start_program(*ADMIN, "C:\\Windows\\System32\\cmd.exe", "/c exit 3")
    assert exit_code(guest, ADMIN, pid) == 3
    wait_for(lambda: app_commits(guest) > 2, 15, message="application transactions")
    with guest.quiesce(timeout=10):
        assert guest.status()["app"]["state"] == "frozen"
    assert guest.status()["app"]["state"] == "running"
    guest.shutdown()


def test_lab_program_installs_a_driver_that_sees_writes(vms):
    config = vms(app_tps=20)
    guest = host.start(config)
    guest.put_file(*ROOT, "/tmp/install-agent.sh", INSTALLER, overwrite=False)
    pid = guest.start_program(*ROOT, "/tmp/install-agent.sh", "--agent mobility")
    assert exit_code(guest, ROOT, pid) == 0
    status = guest.status()
    assert status["drivers"] == [FILTER] and status["services"] == [SERVICE]
    assert all(d["drivers"] == [FILTER] for d in status["disks"])

    spill = Path(config.run_dir) / "spill" / FILTER

    def filter_counts(disk):
        try:
            return json.loads((spill / f"disk{disk}.json").read_text())
        except (OSError, ValueError):
            return None

    wait_for(lambda: (filter_counts(1) or {}).get("writes", 0) > 4, 15, message="filtered writes")

    # a reboot loads the driver again from the registry on disk 0, by name
    pid_before = guest.pid
    guest.reboot()
    assert guest.pid == pid_before and guest.running()
    status = guest.status()
    assert status["boot_count"] == 2 and status["previous_shutdown_clean"] is True
    assert status["disks"][0]["drivers"] == [FILTER]
    wait_for(lambda: (filter_counts(1) or {}).get("boot_count") == 2, 15, message="reloaded")
    beacon = json.loads((Path(config.run_dir) / "spill" / SERVICE / "started.json").read_text())
    assert beacon["boot_count"] == 2 and beacon["settings"]["installed_by"].endswith(".sh")
    guest.shutdown()
    assert registry_of(config).drivers == [FILTER]


def test_clean_shutdown_checks_out(vms):
    config = vms(app_tps=100, churn_mb_s=2)
    guest = host.start(config)
    wait_for(lambda: app_commits(guest) > 10, 15, message="application transactions")
    guest.shutdown()
    assert guest._popen.returncode == 0
    result = host.verify_disks(config.disks)
    assert result["ok"], result["errors"]
    assert result["committed_seq"] > 10 and result["records_checked"] > 0
    assert result["system_area"]["state"] == "clean"

    again = host.start(config)
    status = again.status()
    assert status["previous_shutdown_clean"] is True and status["boot_count"] == 2
    assert status["app"]["last_check"]["committed_seq"] == result["committed_seq"]
    again.shutdown()


def test_hard_power_off_under_load_recovers(vms):
    config = vms(app_tps=300, churn_mb_s=4)
    guest = host.start(config)
    wait_for(lambda: app_commits(guest) > 50, 20, message="application transactions")
    live = host.verify_disks(config.disks)  # read while the guest writes: retries if it moved
    assert live["ok"], live["errors"]
    guest.power_off()
    assert not guest.running()
    assert vms.registered() == []
    result = host.verify_disks(config.disks)  # crash-consistent as it lies on the disks
    assert result["ok"], result["errors"]
    assert result["system_area"]["state"] == "running"  # nobody recorded a clean stop

    again = host.start(config)
    status = again.status()
    assert status["previous_shutdown_clean"] is False
    assert status["app"]["state"] == "running"
    assert status["app"]["last_check"]["ok"]
    assert status["app"]["last_check"]["committed_seq"] == result["committed_seq"]
    wait_for(lambda: app_commits(again) > 5, 15, message="transactions after recovery")
    assert again.check_app()["ok"]
    again.shutdown()
    final = host.verify_disks(config.disks)
    assert final["ok"] and final["committed_seq"] > result["committed_seq"]


def test_sigterm_is_a_clean_shutdown(vms):
    config = vms()
    guest = host.start(config)
    os.kill(guest.pid, signal.SIGTERM)
    wait_for(lambda: not guest.running(), 15, message="guest exit")
    assert guest._popen.returncode == 0
    assert registry_of(config).state == "clean"
    guest.power_off()  # nothing left to kill; unregisters


def test_disk_resized(vms):
    config = vms(churn_mb_s=0)
    guest = host.start(config)
    new_size = 64 << 20
    os.truncate(config.disks[1].path, new_size)  # the hypervisor grows the flat file
    guest.disk_resized(1, new_size)
    assert guest.status()["disks"][1]["size"] == new_size
    with pytest.raises(GuestError) as err:
        guest.disk_resized(1, 16 << 20)
    assert err.value.kind == "bad_request"
    guest.shutdown()


def test_attach_after_the_hypervisor_restarted(vms):
    config = vms()
    assert host.GuestHandle.attach(config) is None
    started = host.start(config)
    with pytest.raises(GuestError) as err:
        host.start(config)
    assert err.value.kind == "bad_request"
    adopted = host.GuestHandle.attach(config)  # what a restarted hypervisor process does
    assert adopted is not None and adopted.pid == started.pid
    assert adopted.running() and adopted.status()["tools"] == "guestToolsRunning"
    adopted.shutdown()
    assert not adopted.running()
    assert host.GuestHandle.attach(config) is None
    started._popen.wait(5)  # reap our child


def test_a_vm_never_provisioned_does_not_boot(vms):
    config = vms(provision=False)
    with pytest.raises(GuestError) as err:
        host.start(config, timeout=20)
    assert err.value.kind == "not_running"
    assert "no operating system" in err.value.message
    assert vms.registered() == []
    assert host.GuestHandle.attach(config) is None
    result = host.verify_disks(config.disks)
    assert not result["ok"] and "no operating system" in result["errors"][0]


def test_a_deep_run_dir_gets_a_short_socket(vms):
    from fakes.guest.channel import socket_path

    config = vms("a-vm-name-long-enough-to-push-the-socket-path-past-the-limit-x")
    assert not socket_path(config.run_dir).startswith(config.run_dir)
    guest = host.start(config)
    assert guest.status()["tools"] == "guestToolsRunning"
    guest.shutdown()
    assert not os.path.exists(socket_path(config.run_dir))
