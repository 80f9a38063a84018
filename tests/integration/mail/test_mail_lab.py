"""The mail sink of a running lab: smtplib and `lab.kit.mail.send_mail` send to it, `/messages`
and `drlab mail --json` read it back."""

import json
import signal
import smtplib
import subprocess
import sys
import threading
import uuid
from email.message import EmailMessage

import requests

from lab.kit.mail import send_mail
from tests.helpers import wait_for


def messages(lab, subject):
    listed = requests.get(f"{lab.url('mail')}/messages", verify=lab.ca, timeout=10).json()
    return [m for m in listed if m["subject"] == subject]


def test_the_lab_exports_where_mail_goes(shared_lab):
    env = shared_lab.env
    smtp = shared_lab.info["services"]["mail"]["ports"]["smtp"]
    assert env["DRLAB_SMTP_HOST"] == "127.0.0.1" and env["DRLAB_SMTP_PORT"] == str(smtp)
    assert env["DRLAB_MAIL_URL"] == shared_lab.url("mail")


def test_smtplib_to_the_sink_then_read_back(shared_lab):
    subject = f"RPO threshold exceeded {uuid.uuid4().hex[:8]}"
    message = EmailMessage()
    message["From"] = "asr-alerts@drlab.local"
    message["To"] = "dr-team@drlab.local"
    message["Subject"] = subject
    message.set_content("lin-db-01: RPO 31 min > 30 min")
    with smtplib.SMTP(
        shared_lab.env["DRLAB_SMTP_HOST"], int(shared_lab.env["DRLAB_SMTP_PORT"]), timeout=10
    ) as smtp:
        smtp.send_message(message)
    (got,) = messages(shared_lab, subject)
    assert got["to"] == ["dr-team@drlab.local"] and "RPO 31 min" in got["body"]

    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab.cli",
            "mail",
            "--json",
            "--state-dir",
            str(shared_lab.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    listed = [m for m in json.loads(cli.stdout) if m["subject"] == subject]
    assert listed == [got]


def test_send_mail_uses_the_topologys_sender_and_recipients(shared_lab):
    subject = f"Health critical {uuid.uuid4().hex[:8]}"
    assert send_mail(shared_lab.info, subject, "process server cache 20% free")
    (got,) = messages(shared_lab, subject)
    assert got["from"] == "asr-alerts@drlab.local"
    assert got["to"] == ["dr-team@drlab.local"]
    assert send_mail(shared_lab.info, subject + " b", "x", to="ops@drlab.local")
    assert messages(shared_lab, subject + " b")[0]["to"] == ["ops@drlab.local"]


def test_send_mail_never_raises(tmp_path):
    assert send_mail({"services": {}, "state_dir": str(tmp_path)}, "s", "b") is False
    unreachable = {"services": {"mail": {"ports": {"smtp": 1}}}}

    class Ctx:
        lab = unreachable
        topology = {"mail": {"sender": "a@x", "recipients": ["b@x"]}}

    assert send_mail(Ctx(), "s", "b", timeout=2) is False


def test_drlab_mail_follow_prints_new_mail(shared_lab):
    subject = f"Follow me {uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab.cli", "mail", "--follow", "--json"]
        + ["--state-dir", str(shared_lab.state_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert send_mail(shared_lab.info, subject, "x")
        wait_for(
            lambda: any(subject in line for line in lines), timeout=30, message="the followed mail"
        )
        followed = [json.loads(line) for line in lines if subject in line]
        assert followed[0]["subject"] == subject
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
