"""The tools channel's protocol, client and server wired together in memory."""

from __future__ import annotations

import pytest

from fakes.guest.errors import GuestError
from fakes.guest.tools import ToolsClient, ToolsServer, decode, encode
from tests.helpers import wait_for
from tests.unit.guest.conftest import ACCOUNTS, WIN_ACCOUNTS

ROOT = ("root", ACCOUNTS["root"])
ADMIN = ("Administrator", WIN_ACCOUNTS["Administrator"])


@pytest.fixture
def wired(machine):
    def make(os_family="linux", **workload):
        guest = machine(os_family, **workload).boot()
        server = ToolsServer(guest)
        return guest, ToolsClient(server.handle_line), server

    return make


def test_status(wired):
    guest, client, _ = wired()
    status = client.call("status")
    assert status["boot_count"] == 1 and status["hostname"] == guest.registry.hostname
    assert status["ip_addresses"] == ["10.10.0.50"]


def test_files_and_programs(wired):
    guest, client, _ = wired()
    client.put_file(*ROOT, "/tmp/hello.txt", b"hi\x00there", overwrite=False)
    assert client.get_file(*ROOT, "/tmp/hello.txt") == b"hi\x00there"
    pid = client.call("start_program", user="root", password=ROOT[1], path="/bin/false")["pid"]
    wait_for(
        lambda: (
            client.call("list_processes", user="root", password=ROOT[1], pids=[pid])[0]["exit_code"]
            is not None
        ),
        10,
    )
    (proc,) = client.call("list_processes", user="root", password=ROOT[1], pids=[pid])
    assert proc["exit_code"] == 1 and proc["name"] == "false" and proc["owner"] == "root"
    assert proc["end_time"] >= proc["start_time"]


def test_wrong_password_is_invalid_login_and_changes_nothing(wired):
    guest, client, _ = wired()
    with pytest.raises(GuestError) as err:
        client.put_file("root", "wrong", "/tmp/x", b"x", overwrite=True)
    assert err.value.kind == "invalid_login"
    assert "wrong" not in err.value.message
    assert not guest.fs.exists("/tmp/x")
    for op, args in [
        ("start_program", {"path": "/bin/true"}),
        ("list_processes", {}),
        ("get_file", {"guest_path": "/etc/hostname"}),
    ]:
        with pytest.raises(GuestError) as err:
            client.call(op, user="nobody", password=ROOT[1], **args)
        assert err.value.kind == "invalid_login"


def test_windows_user_names_ignore_case(wired):
    guest, client, _ = wired("windows")
    client.put_file("administrator", ADMIN[1], "C:\\Temp\\a.txt", b"a", overwrite=False)
    assert (guest.fs.root / "C" / "Temp" / "a.txt").read_bytes() == b"a"
    with pytest.raises(GuestError) as err:
        client.put_file("Administrator", ADMIN[1].upper(), "C:\\Temp\\b", b"", overwrite=False)
    assert err.value.kind == "invalid_login"


def test_unknown_and_malformed_requests(wired):
    _, client, server = wired()
    with pytest.raises(GuestError) as err:
        client.call("CreateSnapshot_Task")
    assert err.value.kind == "not_implemented" and "CreateSnapshot_Task" in err.value.message
    answer = decode(server.handle_line(b"{not json\n"))
    assert answer["ok"] is False and answer["error"]["kind"] == "bad_request"
    answer = decode(server.handle_line(encode({"id": 1, "op": "status", "args": [1]})))
    assert answer["error"]["kind"] == "bad_request"
    with pytest.raises(GuestError) as err:
        client.call("disk_resized", index="0", size=1)
    assert err.value.kind == "bad_request"
    with pytest.raises(GuestError) as err:
        client.call("put_file", user="root", password=ROOT[1], guest_path="/tmp/x", data="!!")
    assert err.value.kind == "bad_request"


def test_power_requests_reach_the_process_running_the_guest(wired):
    guest, client, _ = wired()
    with pytest.raises(GuestError) as err:
        client.call("shutdown")
    assert err.value.kind == "not_supported"  # nothing runs this guest in a process
    pressed = []
    guest.on_power_request = pressed.append
    assert client.call("reboot") == {"accepted": True}
    assert client.call("shutdown") == {"accepted": True}
    assert pressed == ["reboot", "shutdown"]


def test_quiesce_over_the_channel(wired):
    guest, client, _ = wired(quiesce=True)
    token = client.call("quiesce_begin", timeout=10)["token"]
    assert guest.status()["quiesced"]
    assert client.call("quiesce_end", token=token) == {"expired": False}
    with pytest.raises(GuestError) as err:
        client.call("quiesce_end", token=token)
    assert err.value.kind == "bad_request"


def test_check_app_over_the_channel(wired):
    guest, client, _ = wired()
    guest.app.commit()
    result = client.call("check_app")
    assert result["ok"] and result["committed_txn"] == 1


def test_a_garbled_answer_is_tools_unavailable():
    client = ToolsClient(lambda line: b"\x00garbage")
    with pytest.raises(GuestError) as err:
        client.call("status")
    assert err.value.kind == "tools_unavailable"


def test_socket_path_stays_short_and_is_the_same_on_both_sides(tmp_path, monkeypatch):
    from fakes.guest.channel import socket_path

    short = tmp_path / "run"
    assert socket_path(short) == str(short / "tools.sock") or len(str(short)) > 80
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 6)
    path = socket_path(deep)
    assert len(path.encode()) <= 108
    assert path == socket_path(str(deep) + "/")
    assert path != socket_path(deep / "other")
