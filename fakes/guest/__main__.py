"""`python -m fakes.guest <run_dir>/guest.json`: one powered-on VM's guest OS.

Boots the OS, serves its tools channel, and waits for a power request: "shutdown" (tools or
SIGTERM/SIGINT) shuts down cleanly and exits 0; "reboot" shuts down cleanly and re-executes
this program (same pid: the machine keeps its identity). SIGKILL is the hard power-off.
Exit codes: 0 clean shutdown, 1 failure, 3 no operating system on disk 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from lab.kit import logs

from .channel import ToolsSocketServer
from .config import GuestConfig
from .registry import SystemAreaError
from .system import GuestOS
from .tools import ToolsServer

log = logging.getLogger("fakes.guest")
EXIT_NO_OS = 3


class _PowerButton:
    def __init__(self):
        self.pressed = threading.Event()
        self.action = "shutdown"

    def press(self, action: str) -> None:
        if not self.pressed.is_set():
            self.action = action
            self.pressed.set()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m fakes.guest <run_dir>/guest.json", file=sys.stderr)
        return 2
    config = GuestConfig.load(argv[1])
    logs.configure(f"guest-{config.vm_name}")
    button = _PowerButton()
    signal.signal(signal.SIGTERM, lambda *_: button.press("shutdown"))
    signal.signal(signal.SIGINT, lambda *_: button.press("shutdown"))

    guest = GuestOS(config)
    guest.on_power_request = button.press
    try:
        guest.boot()
    except SystemAreaError as exc:
        log.error("%s; provision the VM first", exc)
        return EXIT_NO_OS
    except Exception:
        log.exception("boot failed")
        return 1
    server = ToolsSocketServer(config.run_dir, ToolsServer(guest).handle_line)
    server.start()
    while not button.pressed.wait(0.5):  # a timed wait lets signal handlers run
        pass
    log.info("%s requested", button.action)
    server.stop()
    try:
        guest.shutdown()
    except Exception:
        log.exception("clean shutdown failed")
        return 1
    if button.action == "reboot":
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "fakes.guest", argv[1]])
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    # A machine that has shut down does not wait for its programs: threads a service or a lab
    # program left running must not keep the process alive.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
