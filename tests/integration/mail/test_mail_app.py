"""The mail sink in-process: a real SMTP server (aiosmtpd) on a loopback socket, read back
through the HTTP app with Flask's test client."""

import smtplib
import socket
from email.message import EmailMessage

import pytest

from fakes.mail.app import create_app
from fakes.mail.models import Mailbox
from fakes.mail.smtp import SmtpSink
from tests.helpers import wait_for


@pytest.fixture
def sink(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    mailbox = Mailbox(tmp_path / "mail.sqlite3")
    smtp = SmtpSink(mailbox, sock, clock=lambda: 1_700_000_000.0)
    smtp.start()
    client = create_app(mailbox, smtp.address).test_client()
    yield smtp.address, client
    smtp.stop()
    mailbox.close()
    sock.close()


def send(address, subject, body="body", to=("dr-team@drlab.local",)):
    message = EmailMessage()
    message["From"] = "asr-alerts@drlab.local"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(*address, timeout=10) as smtp:
        smtp.send_message(message)


def test_sent_mail_is_listed_and_shown(sink):
    address, client = sink
    send(address, "RPO threshold exceeded", "lin-db-01: 31 min", to=("a@x", "b@x"))
    listed = client.get("/messages").get_json()
    assert len(listed) == 1
    m = listed[0]
    assert (m["from"], m["to"], m["subject"]) == (
        "asr-alerts@drlab.local",
        ["a@x", "b@x"],
        "RPO threshold exceeded",
    )
    assert m["body"] == "lin-db-01: 31 min\n" and m["date"]
    assert client.get(f"/messages/{m['id']}").get_json() == m
    raw = client.get(f"/messages/{m['id']}/raw")
    assert raw.content_type == "message/rfc822" and b"Subject: RPO threshold" in raw.data


def test_since_delete_and_errors(sink):
    address, client = sink
    for i in range(3):
        send(address, f"alert {i}")
    first = client.get("/messages").get_json()[0]["id"]
    assert [m["subject"] for m in client.get(f"/messages?since={first}").get_json()] == [
        "alert 1",
        "alert 2",
    ]
    assert client.delete(f"/messages/{first}").get_json() == {"deleted": 1}
    assert client.get(f"/messages/{first}").status_code == 404
    assert client.get("/messages?since=-1").status_code == 400
    assert client.delete("/messages").get_json() == {"deleted": 2}
    assert client.get("/messages").get_json() == []
    assert client.get("/_lab/state").get_json()["messages"] == 0


def test_reset_empties_the_mailbox(sink):
    address, client = sink
    send(address, "to be reset")
    wait_for(lambda: client.get("/messages").get_json(), timeout=10, message="the message")
    assert client.post("/_lab/reset").status_code == 200
    assert client.get("/messages").get_json() == []
