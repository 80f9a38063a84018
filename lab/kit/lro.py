"""Polling of long-running ARM operations for the lab's own setup steps.

The lab's ARM front answers every long-running operation with `Retry-After: 1`, as a user's
SDK sees it. The lab's own steps at start (a configuration server registering, `drlab up`
adding the vCenter and the policy) are many and in sequence; they poll every 0.1 s instead,
with the SDK's own ARM poller, so a lab comes up seconds sooner.
"""

from __future__ import annotations

from azure.mgmt.core.polling.arm_polling import ARMPolling

POLL_SECONDS = 0.1


class QuickPolling(ARMPolling):
    def __init__(self, **kwargs):
        super().__init__(timeout=POLL_SECONDS, **kwargs)

    def _extract_delay(self) -> float:
        return POLL_SECONDS
