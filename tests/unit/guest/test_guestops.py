"""Guest operations: path mapping, file transfer rules, built-in and lab programs."""

from __future__ import annotations

import pytest

from fakes.guest.errors import GuestError
from fakes.guest.guestops import GuestFileSystem
from tests.helpers import wait_for
from tests.unit.guest.conftest import ACCOUNTS, WIN_ACCOUNTS

ROOT = ("root", ACCOUNTS["root"])
ADMIN = ("Administrator", WIN_ACCOUNTS["Administrator"])
INSTALLER = b"#!drlab-program tests.unit.guest.modules.installer\n"


@pytest.mark.parametrize(
    "os_family, guest_path, parts",
    [
        ("windows", "C:\\Temp\\x.msi", ["C", "Temp", "x.msi"]),
        ("windows", "c:/Program Files/a b/y", ["C", "Program Files", "a b", "y"]),
        ("linux", "/tmp/x", ["tmp", "x"]),
        ("linux", "/usr//local/./bin/y", ["usr", "local", "bin", "y"]),
    ],
)
def test_paths_map_inside_the_guest_fs(tmp_path, os_family, guest_path, parts):
    assert GuestFileSystem(tmp_path, os_family).parts(guest_path) == parts


@pytest.mark.parametrize(
    "os_family, guest_path",
    [
        ("linux", "/tmp/../../etc/passwd"),
        ("linux", "relative/path"),
        ("linux", ""),
        ("windows", "C:\\Temp\\..\\..\\x"),
        ("windows", "\\\\server\\share\\x"),
        ("windows", "Temp\\x"),
    ],
)
def test_paths_that_escape_or_are_not_absolute_are_refused(tmp_path, os_family, guest_path):
    with pytest.raises(GuestError) as err:
        GuestFileSystem(tmp_path, os_family).resolve(guest_path)
    assert err.value.kind == "bad_request"


def test_file_transfer_rules(machine):
    guest = machine().boot()
    guest.put_file(*ROOT, "/tmp/a", b"1", overwrite=False)
    with pytest.raises(GuestError) as err:
        guest.put_file(*ROOT, "/tmp/a", b"2", overwrite=False)
    assert err.value.kind == "file_exists"
    guest.put_file(*ROOT, "/tmp/a", b"2", overwrite=True)
    assert guest.get_file(*ROOT, "/tmp/a") == b"2"
    with pytest.raises(GuestError) as err:
        guest.put_file(*ROOT, "/nonexistent/dir/a", b"", overwrite=True)
    assert err.value.kind == "file_not_found"
    with pytest.raises(GuestError) as err:
        guest.get_file(*ROOT, "/tmp/missing")
    assert err.value.kind == "file_not_found"
    guest.make_directory(*ROOT, "/opt/vendor/bin", parents=True)
    guest.put_file(*ROOT, "/opt/vendor/bin/x", b"", overwrite=False)


def run(guest, creds, path, arguments="", **kw):
    pid = guest.start_program(*creds, path, arguments, **kw)
    wait_for(lambda: guest.processes.list([pid])[0]["exit_code"] is not None, 10)
    return guest.processes.list([pid])[0]


def test_linux_builtins(machine):
    guest = machine().boot()
    assert run(guest, ROOT, "/bin/true")["exit_code"] == 0
    assert run(guest, ROOT, "/usr/bin/false")["exit_code"] == 1
    assert run(guest, ROOT, "/bin/sh", '-c "exit 7"')["exit_code"] == 7
    assert run(guest, ROOT, "/bin/sh", '-c "echo hello world > /tmp/out"')["exit_code"] == 0
    assert guest.get_file(*ROOT, "/tmp/out") == b"hello world\n"
    assert run(guest, ROOT, "/bin/sh", '-c "frobnicate"')["exit_code"] == 127
    assert run(guest, ROOT, "/bin/sleep", "0.01")["exit_code"] == 0


def test_dd_writes_straight_to_a_disk(machine):
    m = machine()
    guest = m.boot()
    zeros = run(guest, ROOT, "/bin/dd", "if=/dev/zero of=/dev/sdb bs=1M count=2 seek=3")
    assert zeros["exit_code"] == 0
    assert (
        run(guest, ROOT, "/bin/dd", "if=/dev/urandom of=/dev/sda bs=64K count=4 seek=64")[
            "exit_code"
        ]
        == 0
    )
    written = m.devices[0].read(64 * 65536, 4 * 65536)
    assert written != bytes(len(written))  # random, not the zeros of a fresh disk
    for bad in (
        "if=/dev/urandom of=/dev/sdc bs=1M count=1",  # no third disk
        "if=/etc/passwd of=/dev/sda bs=1M count=1",  # not a source dd can read here
        "if=/dev/zero of=/dev/sda bs=1000 count=1",  # not whole sectors
        "if=/dev/zero of=/dev/sda bs=1M count=17",  # past the end of the disk
        "if=/dev/zero of=/dev/sda bs=xM count=1",
    ):
        assert run(guest, ROOT, "/bin/dd", bad)["exit_code"] == 1, bad


def test_windows_builtins(machine):
    guest = machine("windows").boot()
    cmd = "C:\\Windows\\System32\\cmd.exe"
    proc = run(guest, ADMIN, cmd, "/c exit 3")
    assert proc["exit_code"] == 3 and proc["name"] == "cmd.exe"
    assert proc["owner"] == "Administrator" and proc["pid"] % 4 == 0
    assert run(guest, ADMIN, cmd, '/c echo done > "C:\\Temp\\o.txt"')["exit_code"] == 0
    assert guest.get_file(*ADMIN, "C:\\Temp\\o.txt") == b"done\r\n"
    assert run(guest, ADMIN, cmd, "/c nope")["exit_code"] == 9009


def test_a_sleeping_program_runs_until_shutdown(machine):
    guest = machine().boot()
    pid = guest.start_program(*ROOT, "/bin/sleep", "3600")
    (proc,) = guest.processes.list([pid])
    assert proc["exit_code"] is None and proc["end_time"] is None
    guest.shutdown()
    assert guest.processes.list([pid])[0]["exit_code"] is not None


def test_lab_program_installs_drivers(machine):
    guest = machine().boot()
    guest.put_file(*ROOT, "/tmp/install.sh", INSTALLER, overwrite=False)
    proc = run(guest, ROOT, "/tmp/install.sh", "--agent x")
    assert proc["exit_code"] == 0 and proc["name"] == "install.sh"
    assert guest.registry.drivers == ["tests.unit.guest.modules.counting_filter"]
    assert guest.registry.settings["tests.unit.guest.modules.beacon_service"] == {
        "installed_by": "/tmp/install.sh"
    }
    assert run(guest, ROOT, "/tmp/install.sh", "--exit 5")["exit_code"] == 5


def test_programs_that_cannot_run(machine):
    guest = machine().boot()
    with pytest.raises(GuestError) as err:
        guest.start_program(*ROOT, "/usr/bin/missing")
    assert err.value.kind == "program_not_found"
    guest.put_file(*ROOT, "/tmp/data.bin", b"\x00\x01", overwrite=False)
    with pytest.raises(GuestError) as err:
        guest.start_program(*ROOT, "/tmp/data.bin")
    assert err.value.kind == "bad_request"
    guest.put_file(*ROOT, "/tmp/bad", b"#!drlab-program no.such.module\n", overwrite=False)
    with pytest.raises(GuestError) as err:
        guest.start_program(*ROOT, "/tmp/bad")
    assert err.value.kind == "program_not_found"
    with pytest.raises(GuestError) as err:
        guest.start_program(*ROOT, "/bin/true", cwd="/no/such/dir")
    assert err.value.kind == "file_not_found"
    names = {p["name"] for p in guest.processes.list()}
    assert {"systemd", "vmtoolsd"} <= names
