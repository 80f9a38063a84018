"""The mail sink's mailbox: what is kept of a message, and reading it back."""

from email.message import EmailMessage

import pytest

from fakes.mail.models import Mailbox


@pytest.fixture
def mailbox(tmp_path):
    box = Mailbox(tmp_path / "mail.sqlite3")
    yield box
    box.close()


def raw(subject="RPO alert", body="lin-db-01 RPO is 31 min", html=None) -> bytes:
    m = EmailMessage()
    m["From"] = "ASR alerts <asr-alerts@drlab.local>"
    m["To"] = "dr-team@drlab.local"
    m["Subject"] = subject
    m["Date"] = "Wed, 02 Jul 2014 01:32:27 +0000"
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    return m.as_bytes()


def test_a_message_is_kept_with_what_a_reader_wants(mailbox):
    mid = mailbox.add(raw(), "asr-alerts@drlab.local", ["dr-team@drlab.local"], 1.7e9)
    m = mailbox.get(mid)
    assert m["from"] == "ASR alerts <asr-alerts@drlab.local>"
    assert m["to"] == ["dr-team@drlab.local"]
    assert m["subject"] == "RPO alert"
    assert m["date"] == "Wed, 02 Jul 2014 01:32:27 +0000"
    assert m["body"] == "lin-db-01 RPO is 31 min\n"
    assert m["received"].startswith("2023-11-14T")
    assert mailbox.raw(mid) == raw()


def test_the_plain_part_of_a_multipart_message_is_the_body(mailbox):
    mid = mailbox.add(raw(body="plain text", html="<p>html</p>"), "a@x", ["b@x"], 0)
    assert mailbox.get(mid)["body"] == "plain text\n"


def test_a_message_without_headers_is_kept(mailbox):
    mid = mailbox.add(b"just a line\r\n", "a@x", ["b@x", "c@x"], 0)
    m = mailbox.get(mid)
    assert m["from"] == "a@x" and m["subject"] == "" and m["to"] == ["b@x", "c@x"]
    assert "just a line" in m["body"]


def test_list_since_and_delete(mailbox):
    ids = [mailbox.add(raw(subject=f"s{i}"), "a@x", ["b@x"], i) for i in range(3)]
    assert [m["subject"] for m in mailbox.list()] == ["s0", "s1", "s2"]
    assert [m["id"] for m in mailbox.list(since=ids[0])] == ids[1:]
    assert [m["id"] for m in mailbox.list(limit=1)] == ids[:1]
    assert mailbox.delete(ids[1]) == 1 and mailbox.delete(ids[1]) == 0
    assert mailbox.delete() == 2 and mailbox.count() == 0
    # Ids are never reused: a follower's `since` stays valid after a clear.
    assert mailbox.add(raw(), "a@x", ["b@x"], 0) > ids[-1]


def test_messages_survive_reopening(tmp_path):
    first = Mailbox(tmp_path / "m.sqlite3")
    first.add(raw(), "a@x", ["b@x"], 0)
    first.close()
    second = Mailbox(tmp_path / "m.sqlite3")
    assert second.count() == 1
    second.close()
