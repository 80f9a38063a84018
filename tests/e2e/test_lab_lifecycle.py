"""`drlab` as a user runs it: up, status, env, down; two labs at once; interrupted and failed
starts leave nothing running; bad input gets a clear message."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.topology import TOPOLOGY_DIR
from tests.helpers import pid_alive, port_listening, wait_for

pytestmark = pytest.mark.e2e


def drlab(*args, state_dir, env=None, check=True, timeout=120):
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("DRLAB_STATE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lab.cli", *args, "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"drlab {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def lab_processes(state_dir: Path):
    lab = json.loads((state_dir / "lab.json").read_text())
    return [(n, s["pid"], s["started"], s["port"]) for n, s in lab["services"].items()]


def assert_nothing_left(procs):
    for name, pid, started, port in procs:
        if pid:
            assert not pid_alive(pid, started), f"{name} (pid {pid}) is still running"
        assert not port_listening(port), f"port {port} of {name} is still listening"


def test_up_status_env_down(tmp_path):
    state = tmp_path / "lab"
    try:
        drlab("up", state_dir=state)
        procs = lab_processes(state)
        status = json.loads(drlab("status", "--json", state_dir=state).stdout)
        assert status["all_healthy"], status
        assert {"azurite", "entra"} <= set(status["services"])
        env = drlab("env", state_dir=state).stdout
        for var in (
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE",
            "AZURE_AUTHORITY_HOST",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "AZURE_SUBSCRIPTION_ID",
            "DRLAB_STATE_DIR",
            "DRLAB_ENTRA_URL",
            "DRLAB_BLOB_URL",
        ):
            assert f"export {var}=" in env
        assert (
            "/drlabcache"
            in json.loads(drlab("env", "--json", state_dir=state).stdout)["DRLAB_BLOB_URL"]
        )
        logs = drlab("logs", "entra", "-n", "5", state_dir=state).stdout
        assert "listening on https://127.0.0.1" in drlab("logs", "entra", state_dir=state).stdout
        assert logs
        clock = json.loads(drlab("clock", "--json", state_dir=state).stdout)
        drlab("clock", "jump", "2h", state_dir=state)
        jumped = json.loads(drlab("clock", "--json", state_dir=state).stdout)
        assert jumped["lab_epoch"] - clock["lab_epoch"] >= 7200
    finally:
        drlab("down", state_dir=state, check=False)
    assert_nothing_left(procs)
    status = drlab("status", "--json", state_dir=state, check=False)
    assert status.returncode != 0
    assert not json.loads(status.stdout)["all_healthy"]


def test_two_labs_side_by_side(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    try:
        drlab("up", state_dir=a)
        drlab("up", state_dir=b)
        pa, pb = lab_processes(a), lab_processes(b)
        assert {p[3] for p in pa}.isdisjoint({p[3] for p in pb})
        for state in (a, b):
            assert json.loads(drlab("status", "--json", state_dir=state).stdout)["all_healthy"]
        drlab("down", state_dir=a)
        assert_nothing_left(pa)
        assert json.loads(drlab("status", "--json", state_dir=b).stdout)["all_healthy"]
    finally:
        drlab("down", state_dir=a, check=False)
        drlab("down", state_dir=b, check=False)
    assert_nothing_left(pb)


def test_interrupted_up_leaves_nothing_running(tmp_path):
    state = tmp_path / "lab"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "up", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Interrupt once services are spawned but before Azurite (the slowest) is ready.
        def spawned():
            try:
                return all(p[1] for p in lab_processes(state))
            except (FileNotFoundError, ValueError):
                return False

        wait_for(spawned, timeout=60, interval=0.01, message="services to be spawned")
        procs = lab_processes(state)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        drlab("down", state_dir=state, check=False)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert_nothing_left(procs)


def test_failing_service_is_named_and_the_rest_is_stopped(tmp_path):
    state = tmp_path / "lab"
    drlab("up", state_dir=state)
    drlab("down", state_dir=state)
    # Entra's TLS key is damaged: its certificate is still there, so only Entra fails.
    (state / "pki" / "entra.key").write_text("not a key")
    result = drlab("up", state_dir=state, check=False)
    try:
        assert result.returncode == 1
        assert "service entra exited" in result.stderr
        assert "last lines of entra's log" in result.stderr
        assert "Traceback" in result.stderr  # the tail of entra's own log
        assert "every service already started was stopped" in result.stderr
        assert_nothing_left(lab_processes(state))
        assert json.loads((state / "lab.json").read_text())["status"] == "stopped"
    finally:
        drlab("down", state_dir=state, check=False)


def test_bad_topology_is_refused_and_nothing_starts(tmp_path):
    topo = tmp_path / "bad.yaml"
    text = (
        (TOPOLOGY_DIR / "default.yaml")
        .read_text()
        .replace("  vault: drlab-vault", "  vault: drlab-vault\n  colour: x")
    )
    topo.write_text(text)
    result = drlab("up", "--topology", str(topo), state_dir=tmp_path / "lab", check=False)
    assert result.returncode == 1
    line = text.splitlines().index("  colour: x") + 1
    assert f"{topo}:{line}: field 'azure.colour': unknown field" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_port_in_use_gets_a_clear_message(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    topo = tmp_path / "fixed.yaml"
    topo.write_text(
        (TOPOLOGY_DIR / "default.yaml").read_text()
        + textwrap.dedent(f"""\
                    services:
                      entra:
                        port: {port}
                    """)
    )
    try:
        result = drlab("up", "--topology", str(topo), state_dir=tmp_path / "lab", check=False)
    finally:
        busy.close()
    assert result.returncode == 1
    assert f"port {port} for service entra is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_node_modules_gets_a_clear_message(tmp_path):
    result = drlab(
        "up",
        state_dir=tmp_path / "lab",
        check=False,
        env={"DRLAB_NODE_MODULES": str(tmp_path / "nowhere")},
    )
    assert result.returncode == 1
    assert "azurite is not installed" in result.stderr
    assert "make install" in result.stderr


def test_second_up_on_a_running_lab_is_refused(tmp_path):
    state = tmp_path / "lab"
    try:
        drlab("up", state_dir=state)
        again = drlab("up", state_dir=state, check=False)
        assert again.returncode == 1
        assert "already running" in again.stderr
        assert json.loads(drlab("status", "--json", state_dir=state).stdout)["all_healthy"]
    finally:
        drlab("down", state_dir=state, check=False)


def test_commands_read_drlab_state_dir(tmp_path):
    state = tmp_path / "lab"
    env = dict(os.environ, DRLAB_STATE_DIR=str(state))
    try:
        subprocess.run(
            [sys.executable, "-m", "lab.cli", "up"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        out = subprocess.run(
            [sys.executable, "-m", "lab.cli", "env"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert f"export DRLAB_STATE_DIR={state}" in out
    finally:
        subprocess.run([sys.executable, "-m", "lab.cli", "down"], env=env, capture_output=True)


def test_restart_service_keeps_its_port(tmp_path):
    from lab import launcher

    state = tmp_path / "lab"
    try:
        lab = launcher.up("default", state)
        before = lab["services"]["entra"]
        after = launcher.restart_service(state, "entra", kill=True)
        assert after["port"] == before["port"]
        assert after["pid"] != before["pid"]
        assert not pid_alive(before["pid"], before["started"])
        assert launcher.status(state)["all_healthy"]
    finally:
        launcher.down(state)


def test_restarted_azurite_keeps_its_data(tmp_path):
    import uuid

    from azure.storage.blob import BlobServiceClient

    from lab import launcher
    from tests.conftest import LabHandle

    state = tmp_path / "lab"
    try:
        lab = LabHandle(state, launcher.up("default", state))
        service = BlobServiceClient(
            lab.env["DRLAB_BLOB_URL"], credential=lab.credential(), connection_verify=lab.ca
        )
        name = f"t-{uuid.uuid4().hex[:12]}"
        service.create_container(name).upload_blob("kept", b"survives a restart")
        launcher.restart_service(state, "azurite")
        data = service.get_container_client(name).download_blob("kept").readall()
        assert data == b"survives a restart"
    finally:
        launcher.down(state)
