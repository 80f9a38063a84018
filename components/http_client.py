"""A small JSON-over-HTTPS client the on-premises roles use to call each other.

Calls trust the lab CA (a file path, as the requests stack takes it; the agent writes the
PEM its installer was given to a file first).
"""

from __future__ import annotations

from pathlib import Path

import requests

TIMEOUT = (5, 30)


class ServerError(Exception):
    """A server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def ca_file(directory: Path, pem: str) -> str:
    path = directory / "lab-ca.pem"
    if not path.exists() or path.read_text() != pem:
        path.write_text(pem)
    return str(path)


class JsonClient:
    def __init__(self, base_url: str, ca: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.verify = ca
        self.authorization: str | None = None

    def call(
        self,
        method: str,
        path: str,
        body=None,
        data: bytes | None = None,
        headers=None,
        timeout=None,
        raw: bool = False,
    ):
        all_headers = dict(headers or {})
        if self.authorization:
            all_headers["Authorization"] = self.authorization
        try:
            # verify= on each request: a session's own `verify` loses to REQUESTS_CA_BUNDLE.
            resp = self.session.request(
                method,
                self.base_url + path,
                json=body,
                data=data,
                headers=all_headers,
                timeout=timeout or TIMEOUT,
                verify=self.session.verify,
            )
        except requests.RequestException as exc:
            raise ServerError(f"{method} {path}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                message = resp.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:200]
            retry = resp.headers.get("Retry-After")
            raise ServerError(
                f"{method} {path}: {resp.status_code} {message}",
                resp.status_code,
                float(retry) if retry else None,
            )
        if raw:
            return resp.content
        return resp.json() if resp.content else {}

    def close(self) -> None:
        self.session.close()
