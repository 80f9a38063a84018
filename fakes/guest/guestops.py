"""Guest operations: the guest's file system, its processes and the programs it can run.

What vSphere's GuestOperationsManager reaches through VMware Tools:

- Accounts: every operation names a guest OS user and password; they are checked against the
  accounts the hypervisor passed (user names are case-insensitive on Windows). A mismatch is
  GuestError "invalid_login"; the message never carries the password.
- File system: a directory `fs/` in the guest's run_dir. `C:\\Temp\\x` (Windows) is
  `fs/C/Temp/x`, `/tmp/x` (Linux) is `fs/tmp/x`; `..` is refused, so nothing escapes `fs/`.
  Standard directories exist from the first boot; writing into a missing directory is
  "file_not_found", as on a real guest.
- Programs: built-ins (`/bin/true`, `/bin/false`, `/bin/sleep N`, `/bin/echo ...`,
  `/bin/sh -c "..."`; `C:\\Windows\\System32\\cmd.exe /c ...`, `...\\timeout.exe /t N`) and
  lab programs: a file in the guest whose first line is `#!drlab-program <module>`. Starting
  one imports the module and runs `main(guest_api, argv)` (argv[0] is the guest path) in a
  thread with a guest pid; its return value is the exit code (None -> 0, an exception -> 1).
  The shell understands `exit N`, `true`, `false`, `sleep N`, `timeout /t N` and
  `echo TEXT [> PATH | >> PATH]`; any other command exits 127 (Linux) or 9009 (Windows).
  On Linux, `/bin/dd if=/dev/urandom|/dev/zero of=/dev/sdX bs=SIZE count=N [seek=N]` writes
  straight to a disk (sda is the first), through the same driver stack as any guest write:
  a burst of changes for drills (e.g. to overflow a change journal while a link is down).
- Processes: the OS's own (init, tools, the application, services) and every program started,
  with start/end lab time and exit code; ended ones stay listed (the newest 256).

Not emulated: program output capture (as in vSphere: redirect to a file), environment
expansion, file attributes and ownership, guest files travelling with the disks (fs/ is beside
the disks, not on them).
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

from .drivers import DriverError, load_module
from .errors import GuestError

log = logging.getLogger(__name__)

PROGRAM_MAGIC = "#!drlab-program"
KEEP_ENDED = 256
LINUX_DIRS = [
    "/tmp",
    "/root",
    "/home",
    "/opt",
    "/etc",
    "/bin",
    "/usr/bin",
    "/usr/local/bin",
    "/var/log",
    "/var/tmp",
]
WINDOWS_DIRS = [
    "C:\\Temp",
    "C:\\Windows\\Temp",
    "C:\\Windows\\System32",
    "C:\\Program Files",
    "C:\\Program Files (x86)",
    "C:\\ProgramData",
    "C:\\Users",
]


def check_login(accounts: dict[str, str], os_family: str, user, password) -> str:
    """The account's user name if (user, password) is one of the guest's accounts."""
    if isinstance(user, str) and isinstance(password, str):
        for name, secret in accounts.items():
            same = name.lower() == user.lower() if os_family == "windows" else name == user
            if same and secret == password:
                return name
    raise GuestError(
        "invalid_login",
        "Failed to authenticate with the guest operating system using the supplied credentials.",
    )


class GuestFileSystem:
    def __init__(self, root: Path, os_family: str):
        self.root = Path(root)
        self.os_family = os_family

    def parts(self, guest_path) -> list[str]:
        """The host-side path components of a guest path; bad_request if it is not one."""
        if not isinstance(guest_path, str) or not guest_path or "\0" in guest_path:
            raise GuestError("bad_request", f"not a guest path: {guest_path!r}")
        if self.os_family == "windows":
            path = guest_path.replace("/", "\\")
            if len(path) < 3 or path[1:3] != ":\\" or not path[0].isalpha():
                raise GuestError("bad_request", f"not an absolute Windows path: {guest_path}")
            parts = [path[0].upper()] + path[3:].split("\\")
        else:
            if not guest_path.startswith("/"):
                raise GuestError("bad_request", f"not an absolute path: {guest_path}")
            parts = guest_path.split("/")
        parts = [p for p in parts if p not in ("", ".")]
        if ".." in parts:
            raise GuestError("bad_request", f"'..' is not allowed in a guest path: {guest_path}")
        return parts

    def resolve(self, guest_path) -> Path:
        return self.root.joinpath(*self.parts(guest_path))

    def exists(self, guest_path) -> bool:
        return self.resolve(guest_path).exists()

    def create_standard_dirs(self, users: list[str]) -> None:
        if self.os_family == "windows":
            dirs = WINDOWS_DIRS + [f"C:\\Users\\{u}" for u in users]
        else:
            dirs = LINUX_DIRS + [f"/home/{u}" for u in users if u != "root"]
        for guest_dir in dirs:
            self.resolve(guest_dir).mkdir(parents=True, exist_ok=True)

    def put(self, guest_path, data: bytes, overwrite: bool) -> None:
        target = self.resolve(guest_path)
        if not target.parent.is_dir():
            raise GuestError("file_not_found", f"directory of {guest_path} does not exist")
        if target.is_dir():
            raise GuestError("bad_request", f"{guest_path} is a directory")
        if target.exists() and not overwrite:
            raise GuestError("file_exists", f"{guest_path} already exists")
        tmp = target.with_name(f".{target.name}.partial")
        tmp.write_bytes(data)
        tmp.replace(target)

    def get(self, guest_path) -> bytes:
        target = self.resolve(guest_path)
        if not target.is_file():
            raise GuestError("file_not_found", f"{guest_path} does not exist")
        return target.read_bytes()

    def mkdir(self, guest_path, parents: bool) -> None:
        target = self.resolve(guest_path)
        if target.exists():
            raise GuestError("file_exists", f"{guest_path} already exists")
        if not parents and not target.parent.is_dir():
            raise GuestError("file_not_found", f"parent of {guest_path} does not exist")
        target.mkdir(parents=True)


@dataclass
class GuestProcess:
    pid: int
    name: str
    owner: str
    cmd_line: str
    start_time: float
    end_time: float | None = None
    exit_code: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ProcessTable:
    """The guest's processes: system ones (running until shutdown) and started programs."""

    def __init__(self, os_family: str, clock):
        self.os_family = os_family
        self.clock = clock
        self._lock = threading.Lock()
        self._procs: dict[int, GuestProcess] = {}
        self._next_pid = 1000
        self._threads: list[threading.Thread] = []
        self.stop = threading.Event()

    def _allocate(self) -> int:
        pid = self._next_pid
        self._next_pid += 4 if self.os_family == "windows" else 1
        return pid

    def add_system(self, name: str, cmd_line: str, pid: int | None = None) -> int:
        owner = "NT AUTHORITY\\SYSTEM" if self.os_family == "windows" else "root"
        with self._lock:
            pid = pid if pid is not None else self._allocate()
            self._procs[pid] = GuestProcess(pid, name, owner, cmd_line, self.clock.time())
        return pid

    def end(self, pid: int, exit_code: int) -> None:
        with self._lock:
            proc = self._procs.get(pid)
            if proc and proc.exit_code is None:
                proc.end_time, proc.exit_code = self.clock.time(), exit_code
            ended = sorted(
                (p for p in self._procs.values() if p.exit_code is not None),
                key=lambda p: p.end_time,
            )
            for old in ended[:-KEEP_ENDED]:
                del self._procs[old.pid]

    def run(self, name: str, owner: str, cmd_line: str, body) -> int:
        """Start `body()` (returns an exit code) as a process in a thread; returns its pid."""
        with self._lock:
            pid = self._allocate()
            self._procs[pid] = GuestProcess(pid, name, owner, cmd_line, self.clock.time())

        def _main():
            try:
                code = body()
                code = 0 if code is None else int(code)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:
                log.exception("guest program %s (pid %d) failed", name, pid)
                code = 1
            self.end(pid, code)

        thread = threading.Thread(target=_main, name=f"guest-pid-{pid}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return pid

    def list(self, pids=None) -> list[dict]:
        with self._lock:
            procs = sorted(self._procs.values(), key=lambda p: p.pid)
        if pids:
            wanted = {int(p) for p in pids}
            procs = [p for p in procs if p.pid in wanted]
        return [p.to_dict() for p in procs]

    def shutdown(self, grace: float = 5.0) -> None:
        """Ask running programs to stop and wait a little: threads cannot be killed."""
        self.stop.set()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            for proc in self._procs.values():
                if proc.exit_code is None:
                    proc.end_time, proc.exit_code = self.clock.time(), 0


# -- programs -----------------------------------------------------------------------------------
class Programs:
    """Finds and runs what start_program names, built-in or lab program."""

    def __init__(
        self,
        os_family: str,
        fs: GuestFileSystem,
        table: ProcessTable,
        make_api,
        service_control=None,
    ):
        self.os_family = os_family
        self.fs = fs
        self.table = table
        self.make_api = make_api  # (owner, environment, cwd) -> GuestAPI
        # (action, service) -> exit code: what `systemctl` and `net start|stop` do
        self.service_control = service_control

    def split(self, arguments: str) -> list[str]:
        if not arguments:
            return []
        try:
            if self.os_family == "windows":  # backslashes are path separators, not escapes
                return [_unquote(a) for a in shlex.split(arguments, posix=False)]
            return shlex.split(arguments)
        except ValueError as exc:
            raise GuestError("bad_request", f"cannot parse the arguments: {exc}") from None

    def start(self, owner: str, path, arguments: str, env, cwd) -> int:
        if not isinstance(path, str) or not path:
            raise GuestError("bad_request", "a program path is required")
        if cwd and not self.fs.resolve(cwd).is_dir():
            raise GuestError("file_not_found", f"working directory {cwd} does not exist")
        argv = self.split(arguments or "")
        cmd_line = f'"{path}" {arguments}'.rstrip() if arguments else f'"{path}"'
        builtin = self._builtin(path)
        if builtin is not None:
            name = _basename(path, self.os_family)
            return self.table.run(name, owner, cmd_line, lambda: builtin(argv))
        module_name = self._lab_program(path)
        try:
            module = load_module(module_name, "program", "main")
        except DriverError as exc:
            raise GuestError("program_not_found", str(exc)) from None
        api = self.make_api(module_name, _environment(env), cwd)
        name = _basename(path, self.os_family)
        return self.table.run(name, owner, cmd_line, lambda: module.main(api, [path, *argv]))

    def _lab_program(self, path: str) -> str:
        target = self.fs.resolve(path)
        if not target.is_file():
            raise GuestError("program_not_found", f"{path} does not exist in the guest")
        with target.open("rb") as f:
            first = f.readline(256).decode("utf-8", "replace").strip()
        if not first.startswith(PROGRAM_MAGIC) or len(first.split()) != 2:
            raise GuestError(
                "bad_request",
                f"{path} is not a program this guest can run (a lab program starts with "
                f"'{PROGRAM_MAGIC} <module>')",
            )
        return first.split()[1]

    def _builtin(self, path: str):
        if self.os_family == "windows":
            key = path.replace("/", "\\").lower()
            return {
                "c:\\windows\\system32\\cmd.exe": self._cmd,
                "c:\\windows\\system32\\timeout.exe": lambda argv: self._shell(["timeout", *argv]),
                "c:\\windows\\system32\\net.exe": lambda argv: self._shell(["net", *argv]),
            }.get(key)
        key = str(PurePosixPath(path))
        table = {
            "true": lambda argv: 0,
            "false": lambda argv: 1,
            "sleep": lambda argv: self._shell(["sleep", *argv]),
            "echo": lambda argv: self._shell(["echo", *argv]),
            "systemctl": lambda argv: self._shell(["systemctl", *argv]),
            "dd": self._dd,
            "sh": self._sh,
            "bash": self._sh,
        }
        for prefix in ("/bin/", "/usr/bin/"):
            if key.startswith(prefix) and key[len(prefix) :] in table:
                return table[key[len(prefix) :]]
        return None

    def _dd(self, argv: list[str]) -> int:
        """A raw disk write, as dd does it; 1 on bad operands (as dd exits)."""
        ops = dict(a.split("=", 1) for a in argv if "=" in a)
        try:
            source = {"/dev/urandom": os.urandom, "/dev/zero": bytes}[ops.get("if", "")]
            letter = ops.get("of", "").removeprefix("/dev/sd")
            disks = self.make_api("dd", {}, None).disks
            if len(letter) != 1 or not "a" <= letter < chr(ord("a") + len(disks)):
                return 1
            disk = disks[ord(letter) - ord("a")]
            bs = _dd_size(ops.get("bs", "512"))
            count, seek = int(ops.get("count", "1")), int(ops.get("seek", "0"))
        except (KeyError, ValueError):
            return 1
        if bs <= 0 or bs % 512 or count < 0 or seek < 0 or (seek + count) * bs > disk.size:
            return 1
        for i in range(count):
            disk.write((seek + i) * bs, source(bs))
        return 0

    def _sh(self, argv: list[str]) -> int:
        if len(argv) >= 2 and argv[0] == "-c":
            return self._shell(shlex.split(argv[1]))
        return 127 if argv else 0

    def _cmd(self, argv: list[str]) -> int:
        if argv and argv[0].lower() in ("/c", "/k"):
            return self._shell(argv[1:])
        return 0

    def _shell(self, words: list[str]) -> int:
        """The few commands the lab's shells understand."""
        not_found = 9009 if self.os_family == "windows" else 127
        if not words:
            return 0
        command, args = words[0].lower(), words[1:]
        if command == "exit":
            return _int(args[0] if args else "0", not_found)
        if command in ("true", "false"):
            return 0 if command == "true" else 1
        if command in ("sleep", "timeout"):
            values = [a for a in args if not a.startswith("/")] if command == "timeout" else args
            seconds = _float(values[0] if values else "", -1)
            if seconds < 0:
                return 1
            self.table.stop.wait(seconds)
            return 0
        if command == "echo":
            return self._echo(args)
        action = args[0].lower() if len(args) == 2 else None
        if self.service_control is not None and action is not None:
            linux = self.os_family != "windows"
            if (linux and command == "systemctl" and action in ("start", "stop", "restart")) or (
                not linux and command == "net" and action in ("start", "stop")
            ):
                return self.service_control(action, args[1])
        return not_found

    def _echo(self, args: list[str]) -> int:
        for op in (">>", ">"):
            if op in args:
                at = args.index(op)
                if at + 1 >= len(args):
                    return 1
                text = " ".join(args[:at]) + ("\r\n" if self.os_family == "windows" else "\n")
                target = self.fs.resolve(args[at + 1])
                if not target.parent.is_dir():
                    return 1
                with target.open("a" if op == ">>" else "w", newline="") as f:
                    f.write(text)
                return 0
        return 0


def _basename(path: str, os_family: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _unquote(arg: str) -> str:
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
        return arg[1:-1]
    return arg


def _environment(env) -> dict:
    if not env:
        return {}
    if isinstance(env, dict):
        return {str(k): str(v) for k, v in env.items()}
    out = {}
    for item in env:  # vSphere passes ["NAME=value", ...]
        name, _, value = str(item).partition("=")
        out[name] = value
    return out


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _float(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


def _dd_size(text: str) -> int:
    """dd's block size: a number with an optional K, M or G (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)
