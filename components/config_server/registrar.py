"""Who may talk to the configuration server: process servers, master targets and mobility
agents register with the configuration-server passphrase; afterwards they present what
registration gave them. A wrong passphrase registers nothing and is logged without the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid

from components import agent_tokens

from .store import ConfigStore

log = logging.getLogger(__name__)


class RegistrationRefused(Exception):
    status = 401
    code = "InvalidPassphrase"


class NotRegistered(Exception):
    status = 401
    code = "NotRegistered"


class BadRequest(Exception):
    status = 400
    code = "BadRequest"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def require(body: dict, *fields: str) -> None:
    missing = [f for f in fields if body.get(f) in (None, "")]
    if missing:
        raise BadRequest(f"missing fields: {', '.join(missing)}")


class Registrar:
    def __init__(self, store: ConfigStore, clock, data_key_b64: str | None):
        self.store = store
        self.clock = clock
        self.passphrase = store.secret("passphrase", 12)
        self.agent_key = store.secret("agent_token_key").encode()
        self.data_key_b64 = data_key_b64

    # -- passphrase ---------------------------------------------------------------------------
    def _check_passphrase(self, offered: str | None, who: str) -> None:
        if not offered or not hmac.compare_digest(offered.encode(), self.passphrase.encode()):
            log.warning("refused registration of %s: wrong configuration-server passphrase", who)
            raise RegistrationRefused(
                "the configuration-server passphrase is not correct; nothing was registered"
            )

    # -- process servers and master targets ---------------------------------------------------
    def register_server(self, table: str, body: dict) -> dict:
        require(body, "name", "url", "ip")
        self._check_passphrase(body.get("passphrase"), f"{table[:-1]} {body['name']}")
        existing = {s["name"]: s for s in self.store.servers(table)}.get(body["name"])
        server_id = existing["id"] if existing else str(uuid.uuid4())
        key = secrets.token_urlsafe(32)
        row = {
            "id": server_id,
            "name": body["name"],
            "url": body["url"],
            "ip": body["ip"],
            "key_hash": _hash(key),
            "registered_at": self.clock.time(),
        }
        if table == "master_targets":
            row["os_family"] = body.get("os_family", "windows")
        self.store.upsert_server(table, row)
        log.info("registered %s %s (%s)", table[:-1].replace("_", " "), body["name"], server_id)
        reply = {"id": server_id, "key": key}
        if table == "process_servers":
            reply["agent_token_key"] = base64.b64encode(self.agent_key).decode()
            reply["replication_data_key"] = self.data_key_b64
        return reply

    def authenticate_server(self, table: str, server_id: str, authorization: str | None) -> dict:
        server = self.store.server(table, server_id)
        expected = f"Server {server_id}:"
        if server is None or not authorization or not authorization.startswith(expected):
            raise NotRegistered(f"{server_id} is not a registered server")
        if not hmac.compare_digest(_hash(authorization[len(expected) :]), server["key_hash"]):
            raise NotRegistered(f"{server_id} presented a wrong key")
        return server

    def server_health(self, table, server_id, authorization, health: dict) -> None:
        self.authenticate_server(table, server_id, authorization)
        self.store.server_heartbeat(table, server_id, self.clock.time(), health)

    # -- mobility agents ----------------------------------------------------------------------
    def register_agent(self, body: dict) -> dict:
        require(body, "vm_id", "hostname", "os_family", "agent_version")
        self._check_passphrase(body.get("passphrase"), f"agent on {body['hostname']}")
        existing = self.store.agent(body["vm_id"])
        agent_id = existing["id"] if existing else str(uuid.uuid4())
        now = self.clock.time()
        self.store.upsert_agent(
            {
                "id": agent_id,
                "vm_id": body["vm_id"],
                "hostname": body["hostname"],
                "os_family": body["os_family"],
                "ip_addresses": _json_list(body.get("ip_addresses")),
                "version": body["agent_version"],
                "disks": _json_list(body.get("disks")),
                "registered_at": now,
                "last_heartbeat": now,
            }
        )
        log.info("registered mobility agent %s on %s", agent_id, body["hostname"])
        return {"agent_id": agent_id, "token": self._token(agent_id, body["vm_id"])}

    def authenticate_agent(self, authorization: str | None) -> dict:
        try:
            ident = agent_tokens.from_header(self.agent_key, authorization)
        except agent_tokens.AgentTokenError as exc:
            raise NotRegistered(str(exc)) from None
        agent = self.store.agent(ident.agent_id)
        if agent is None or agent["vm_id"] != ident.vm_id:
            raise NotRegistered("the agent is no longer registered")
        return agent

    def agent_heartbeat(self, authorization: str | None, body: dict) -> tuple[dict, dict]:
        """Record a heartbeat; returns the agent and a reply carrying a fresh token."""
        agent = self.authenticate_agent(authorization)
        status = body.get("status") or {}
        if not isinstance(status, dict):
            raise BadRequest("'status' must be an object")
        self.store.agent_heartbeat(agent["id"], self.clock.time(), status)
        return agent, {"token": self._token(agent["id"], agent["vm_id"])}

    def _token(self, agent_id: str, vm_id: str) -> str:
        return agent_tokens.issue(self.agent_key, agent_id, vm_id)


def _json_list(value) -> str:
    import json

    if value is None:
        return "[]"
    if not isinstance(value, list):
        raise BadRequest("expected a list")
    return json.dumps(value)
