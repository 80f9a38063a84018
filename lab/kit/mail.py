"""E-mail from lab services (RPO-threshold and health alerts) to the lab's mail sink.

`send_mail(ctx, subject, body)` sends one plain-text message over SMTP to the sink the launcher
started (lab.json `services.mail.ports.smtp`), from the topology's `mail.sender` to its
`mail.recipients` unless `to` is given. It never raises into the caller: a lab without a mail
sink, an unreachable sink or a refused message is logged and answered with False. The SMTP
exchange is bounded by `timeout`; callers on a hot path should send from their alerting thread.

Not here: attachments, HTML, retries, TLS (the sink is plain SMTP on loopback).
"""

from __future__ import annotations

import email.utils
import logging
import smtplib
from email.message import EmailMessage
from pathlib import Path

log = logging.getLogger(__name__)

SMTP_HOST = "127.0.0.1"


def _lab_and_topology(lab_or_ctx) -> tuple[dict, dict]:
    """(lab.json, topology) from a ServiceContext, a lab.json dict or a state directory."""
    from .labinfo import read_lab, read_topology

    if hasattr(lab_or_ctx, "lab") and hasattr(lab_or_ctx, "topology"):
        return lab_or_ctx.lab, lab_or_ctx.topology
    if isinstance(lab_or_ctx, dict):
        return lab_or_ctx, read_topology(lab_or_ctx["state_dir"])
    return read_lab(Path(lab_or_ctx)), read_topology(Path(lab_or_ctx))


def smtp_address(lab: dict) -> tuple[str, int] | None:
    """Where the lab's mail sink takes SMTP, or None if the lab has none."""
    port = lab.get("services", {}).get("mail", {}).get("ports", {}).get("smtp")
    return (SMTP_HOST, int(port)) if port else None


def send_mail(
    lab_or_ctx,
    subject: str,
    body: str,
    to: str | list[str] | None = None,
    *,
    sender: str | None = None,
    headers: dict | None = None,
    timeout: float = 5.0,
) -> bool:
    """Send a plain-text e-mail to the lab's mail sink; True if the sink accepted it."""
    try:
        lab, topology = _lab_and_topology(lab_or_ctx)
        address = smtp_address(lab)
        spec = topology.get("mail")
        if address is None or spec is None:
            log.info("no mail sink in this lab: e-mail %r not sent", subject)
            return False
        recipients = [to] if isinstance(to, str) else list(to or spec.get("recipients") or [])
        if not recipients:
            log.warning("e-mail %r has no recipients; not sent", subject)
            return False
        message = EmailMessage()
        message["From"] = sender or spec.get("sender") or "drlab@drlab.local"
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = email.utils.make_msgid(domain="drlab.local")
        for name, value in (headers or {}).items():
            message[name] = str(value)
        message.set_content(body)
        with smtplib.SMTP(*address, timeout=timeout, local_hostname="drlab.local") as smtp:
            smtp.send_message(message, to_addrs=recipients)
        return True
    except Exception as exc:  # e-mail is best effort: the caller's work goes on
        log.warning("e-mail %r not sent: %s: %s", subject, type(exc).__name__, exc)
        return False
