"""A ledger pair of real guest processes on sparse files: transfers flow over the receiver's
socket, survive kill -9 of either side, and the pair's invariant holds on copies of both VMs'
disks taken at one instant and fails on copies taken one after the other."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import uuid

from azure.storage.blob import BlobServiceClient

from fakes.guest import host, ledger
from fakes.guest.blockdev import MemoryDevice
from fakes.guest.config import DiskRef, GuestConfig
from fakes.guest.layout import Area
from fakes.guest.ledger_link import ledger_socket_path
from fakes.guest.offline import install_os
from fakes.guest.registry import read_registry
from tests.helpers import wait_for

from .test_pageblob import page_blob, sas_disk

SENDER, RECEIVER = "lin-pay-01", "lin-bank-01"


def pair(vms, tps=40.0):
    sender = vms(SENDER, app_tps=10, ledger={"peer": RECEIVER, "role": "sender", "tps": tps})
    receiver = vms(RECEIVER, app_tps=10, ledger={"peer": SENDER, "role": "receiver"})
    return sender, receiver


def ledger_status(handle) -> dict:
    return handle.status()["ledger"]


def received(handle) -> int:
    return ledger_status(handle)["transfers"]


@contextlib.contextmanager
def held(*handles):
    """Every guest stopped (SIGSTOP) for the block: their disks are one instant."""
    stopped = []
    try:
        for handle in handles:
            os.kill(handle.pid, signal.SIGSTOP)
            stopped.append(handle)
        yield
    finally:
        for handle in stopped:
            os.kill(handle.pid, signal.SIGCONT)


def copy_disks(config, into) -> list[DiskRef]:
    into.mkdir(parents=True, exist_ok=True)
    copies = []
    for disk in config.disks:
        target = into / os.path.basename(disk.path)
        shutil.copyfile(disk.path, target)
        copies.append(DiskRef(disk.label, str(target), disk.size))
    return copies


def test_transfers_flow_and_survive_kill_9_of_either_side(vms):
    sender_config, receiver_config = pair(vms)
    sender = host.start(sender_config)  # first: it waits for the receiver and keeps transfers
    wait_for(lambda: ledger_status(sender)["transfers"] >= 5, 15, message="transfers recorded")
    assert not ledger_status(sender)["connected"]
    receiver = host.start(receiver_config)
    assert os.path.exists(ledger_socket_path(receiver_config.state_dir, RECEIVER))
    wait_for(lambda: received(receiver) >= 20, 20, message="transfers received")
    assert ledger_status(sender)["connected"]
    assert sender.status()["app"]["commits_this_boot"] > 0  # the application keeps running

    receiver.power_off()  # kill -9: whatever the receiver had not committed is gone
    after_crash = host.verify_disks(receiver_config.disks)
    assert after_crash["ok"], after_crash["errors"]
    had = after_crash["ledger"]["transfers"]
    wait_for(lambda: ledger_status(sender)["in_flight"] >= 10, 15, message="transfers kept")
    receiver = host.start(receiver_config)
    status = ledger_status(receiver)
    assert status["last_check"]["ok"] and status["last_check"]["transfers"] == had
    wait_for(lambda: ledger_status(sender)["in_flight"] < 10, 20, message="the resend")
    assert ledger_status(sender)["connections"] >= 2

    sender.power_off()  # and the sender: it recovers its position and what is unacknowledged
    sent = host.verify_disks(sender_config.disks)["ledger"]["transfers"]
    sender = host.start(sender_config)
    wait_for(lambda: received(receiver) > sent, 20, message="transfers after the sender's crash")

    sender.shutdown()  # the sender first: the receiver's disks are then at least as late
    receiver.shutdown()
    result = host.verify_ledger(sender_config.disks, receiver_config.disks)
    # nothing lost (the receiver went on past both crashes), nothing doubled (its book holds
    # each id once, and its running total is the sender's at the same transfer)
    assert result["ok"], result["errors"]
    assert result["received"] > sent and 0 <= result["in_flight"] <= result["sent"] - sent
    receiver_summary = host.verify_disks(receiver_config.disks)
    assert receiver_summary["ok"] and receiver_summary["ledger"]["role"] == "receiver"


def test_copies_at_one_instant_verify_and_copies_a_moment_apart_do_not(vms, tmp_path):
    sender_config, receiver_config = pair(vms, tps=50)
    receiver = host.start(receiver_config)
    sender = host.start(sender_config)
    wait_for(lambda: received(receiver) >= 20, 20, message="transfers received")

    with held(sender, receiver):  # both guests at one instant
        sender_copy = copy_disks(sender_config, tmp_path / "cut" / SENDER)
        receiver_copy = copy_disks(receiver_config, tmp_path / "cut" / RECEIVER)
    result = host.verify_ledger(sender_copy, receiver_copy)
    assert result["ok"], result["errors"]
    assert result["sent"] >= result["received"] >= 20
    assert result["in_flight"] == result["sent"] - result["received"]
    for copy in (sender_copy, receiver_copy):
        summary = host.verify_disks(copy)
        assert summary["ok"], summary["errors"]
        assert summary["ledger"]["ok"]

    with held(sender):  # the sender's disks first ...
        early = copy_disks(sender_config, tmp_path / "apart" / SENDER)
    sent = host.verify_disks(early)["ledger"]["transfers"]
    wait_for(lambda: received(receiver) > sent + 2, 20, message="the receiver to move on")
    with held(receiver):  # ... and the receiver's a moment later
        late = copy_disks(receiver_config, tmp_path / "apart" / RECEIVER)
    result = host.verify_ledger(early, late)
    assert not result["ok"]
    assert result["violations"][0] == sent + 1
    assert result["received"] > result["sent"] == sent
    assert f"transfer {sent + 1} was received but never sent" in result["errors"][0]
    # each VM's copy is crash-consistent on its own: only the pair is not
    assert host.verify_disks(early)["ok"] and host.verify_disks(late)["ok"]

    sender.shutdown()
    receiver.shutdown()


def test_verify_ledger_reads_page_blobs(shared_lab, tmp_path):
    """The same check on disks in Azure (page blobs behind SAS URLs), as after a failover."""

    def machine(name, role, peer, count):
        devices = [MemoryDevice(4 << 20), MemoryDevice(8 << 20)]
        config = GuestConfig(
            vm_id=name,
            vm_name=name,
            os_family="linux",
            hostname=name,
            ip_addresses=[],
            disks=[DiskRef(f"Hard disk {i + 1}", "", d.size) for i, d in enumerate(devices)],
            run_dir=str(tmp_path / name),
            accounts={},
            workload={"churn_mb_s": 0, "app_tps": 0, "ledger": {"peer": peer, "role": role}},
        )
        install_os(devices, config, now=0.0)
        area = Area.from_dict(read_registry(devices[0]).ledger_area)
        book = ledger.Ledger(devices[area.disk], area.offset)
        book.recover()
        pair = ledger.pair_id(*ledger.LedgerSettings(peer, role).pair(name))
        for k in range(1, count + 1):
            with book.writing(1):
                book.commit([(k, ledger.amount_of(pair, k))])
        return devices

    def to_page_blobs(devices, container) -> list[DiskRef]:
        disks = []
        for i, dev in enumerate(devices):
            blob = page_blob(container, dev.size)
            for offset in range(0, dev.size, 1 << 16):  # only what was written
                chunk = dev.read(offset, 1 << 16)
                if chunk.count(0) != len(chunk):
                    blob.write(offset, chunk)
            disks.append(sas_disk(shared_lab, blob, f"Hard disk {i + 1}"))
        return disks

    service = BlobServiceClient(
        shared_lab.env["DRLAB_BLOB_URL"],
        credential=shared_lab.credential(),
        connection_verify=shared_lab.ca,
    )
    container = service.create_container(f"ledger-{uuid.uuid4().hex[:12]}")
    try:
        sender = to_page_blobs(machine(SENDER, "sender", RECEIVER, 5), container)
        early_sender = to_page_blobs(machine(SENDER, "sender", RECEIVER, 2), container)
        receiver = to_page_blobs(machine(RECEIVER, "receiver", SENDER, 3), container)
        result = host.verify_ledger(sender, receiver)
        assert result["ok"], result["errors"]
        assert (result["sent"], result["received"], result["in_flight"]) == (5, 3, 2)
        assert host.verify_disks(receiver)["ledger"]["transfers"] == 3
        result = host.verify_ledger(early_sender, receiver)
        assert not result["ok"] and result["violations"] == [3]
    finally:
        container.delete_container()
