"""network-cut-resync: a long cut overflows the change journal; a resync with the link down
fails and says why; with the link back, a resync over a slow link converges.

The agent -> process server link goes down, and the guest writes more than its change
journal can hold (`dd` to its first disk, past `onprem.mobility.journal_limit`). The journal
overflows: the change stream is broken, and the item shows resync required. A resync asked
while the link is still down fails with a health error naming the cause; it is resolved
(resolveHealthErrors). The link comes back with latency, jitter and a bandwidth cap, and the
resync converges: only what differs is sent, and a point after it verifies.

The VM: `DRLAB_DRILL_VM` if set, else lin-db-01 (a Linux guest: the burst uses `/bin/dd`).
"""

from __future__ import annotations

import requests

from lab.kit.units import parse_size

from . import _failover as f
from . import _resync as rs

NAME = "network-cut-resync"
SUMMARY = "cut link + write burst: journal overflow, failed resync names the cause, then converge"
BURST_OFFSET = 64 << 20  # past disk 0's system area: the write generator's ground


def run(drill) -> None:
    try:
        _run(drill, rs.drill_vm())
    finally:
        for name in f.site_links(drill):
            f.set_link(drill, name, True)
            _toxics(drill, name, clear=True)


def _run(drill, vm: str) -> None:
    with drill.step(f"Protect {vm} (if not yet) and wait for a recovery point"):
        rs.protect(drill, vm)

    link = next(n for n in f.site_links(drill) if n.startswith("agent-"))
    mobility = drill.asr.topology["onprem"].get("mobility") or {}
    limit = parse_size(mobility.get("journal_limit", "512MiB"))
    burst = limit + (limit // 2) + (16 << 20)
    with drill.step(f"Cut {link} and write {burst >> 20} MiB in the guest"):
        f.set_link(drill, link, False)
        code = rs.run_in_guest(
            drill,
            vm,
            "/bin/dd",
            f"if=/dev/urandom of=/dev/sda bs=1M count={burst >> 20} seek={BURST_OFFSET >> 20}",
        )
        drill.check(code == 0, f"{vm}: dd exited {code}")
        drill.figure("burst_bytes", burst)
        drill.figure("journal_limit_bytes", limit)

    with drill.step("The journal overflows: resync required"):
        rs.wait_required(drill, vm, "ResyncRequired")

    with drill.step("A resync with the link still down fails, and says why"):
        asr = drill.asr
        poller, _ = asr.resync(vm)
        try:
            poller.result()
            drill.check(False, f"{vm}: the resync succeeded with {link} down")
        except Exception as exc:  # the job failed: its error is the SDK's exception
            drill.say(f"{vm}: the resync failed: {str(exc).splitlines()[0][:200]}")
        error = drill.wait_for(
            lambda: next(
                (
                    e
                    for e in asr.protected(vm).properties.health_errors or []
                    if e.error_code == "ResyncFailed"
                ),
                None,
            ),
            timeout=60,
            what=f"{vm}'s ResyncFailed health error",
        )
        drill.check(
            "process server" in error.summary_message,
            f"{vm}: the health error does not name the cause: {error.summary_message}",
        )
        drill.say(f"{vm}: health error {error.error_code}: {error.summary_message}")
        _resolve(asr, vm, error.error_id)
        drill.wait_for(
            lambda: (
                not any(
                    e.error_id == error.error_id
                    for e in asr.protected(vm).properties.health_errors or []
                )
            ),
            timeout=60,
            what="the resolved health error to go",
        )
        drill.say(f"{vm}: the ResyncFailed error was resolved")

    with drill.step(f"{link} back, slow (latency, jitter, a bandwidth cap): resynchronize"):
        f.set_link(drill, link, True)
        _toxics(drill, link)
        job = rs.resync(drill, vm)

    with drill.step("Only the differences were sent; a point after the resync verifies"):
        rs.report_and_verify(drill, vm, job)


def _toxics(drill, link: str, clear: bool = False) -> None:
    """Latency 20 ms +- 5 ms and 40 MB/s each way (`drlab link latency|bandwidth`)."""
    url = f"{drill.lab['services']['links']['url']}/proxies/{link}/toxics"
    ca = drill.lab["ca_cert"]
    if clear:
        for toxic in requests.get(url, verify=ca, timeout=30).json():
            requests.delete(f"{url}/{toxic['name']}", verify=ca, timeout=30)
        return
    for stream in ("upstream", "downstream"):
        for body in (
            {"type": "latency", "attributes": {"latency": 20, "jitter": 5}},
            {"type": "bandwidth", "attributes": {"rate": 40_000}},
        ):
            body = {**body, "stream": stream}
            requests.post(url, json=body, verify=ca, timeout=30).raise_for_status()


def _resolve(asr, vm: str, error_id: str) -> None:
    """resolveHealthErrors through the SDK: the operator says the cause is dealt with."""
    from azure.mgmt.recoveryservicessiterecovery import models

    site = asr.site()
    item = asr.protected(vm)
    body = models.ResolveHealthInput(
        properties=models.ResolveHealthInputProperties(
            health_errors=[models.ResolveHealthError(health_error_id=error_id)]
        )
    )
    asr.client.replication_protected_items.begin_resolve_health_errors(
        asr.rg, asr.vault, site.fabric, site.container, item.name, body
    ).result()
