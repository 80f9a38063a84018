"""SessionManager: Login/Logout with the topology's credentials, sessions by cookie, idle expiry.

A session is found by the `vmware_soap_session` cookie (pyvmomi sends back the whole
Set-Cookie value; Werkzeug parses it). Sessions expire after `vcenter.session_timeout_minutes`
of wall-clock idleness (like vCenter's `config.vmacore.soap.sessionTimeout`; the lab clock is
not used, as for token lifetimes). A missing or expired session answers NotAuthenticated,
which pyvmomi's SessionOrientedStub treats as "log in again".

Not emulated: LoginByToken (SAML), LoginExtension*, AcquireCloneTicket/CloneSession,
ImpersonateUser, local tickets. Sessions live in memory: a vCenter restart logs everyone out,
as a real vpxd restart does.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field

from pyVmomi import vim

from .errors import InvalidLogin, NotAuthenticated
from .registry import Call, ManagedObjectBase, current_call, soap_method, typed_array

log = logging.getLogger(__name__)

COOKIE = "vmware_soap_session"


@dataclass
class Session:
    key: str
    cookie: str
    user: str
    login_time: object  # datetime (lab time)
    ip: str
    user_agent: str
    last_active: float = field(default_factory=time.monotonic)
    last_active_time: object = None  # datetime (lab time)
    calls: int = 0

    def user_session(self) -> vim.UserSession:
        return vim.UserSession(
            key=self.key,
            userName=self.user,
            fullName=self.user,
            loginTime=self.login_time,
            lastActiveTime=self.last_active_time or self.login_time,
            locale="en",
            messageLocale="en",
            extensionSession=False,
            ipAddress=self.ip,
            userAgent=self.user_agent,
            callCount=self.calls,
        )


class SessionStore:
    """Sessions by cookie; thread-safe; idle ones expire."""

    def __init__(self, timeout_seconds: float, now=time.monotonic):
        self.timeout = timeout_seconds
        self._now = now
        self._by_cookie: dict[str, Session] = {}
        self._lock = threading.Lock()
        self.on_end = []  # callbacks(session) when a session ends (logout or expiry)

    def create(self, user: str, ip: str, user_agent: str, lab_now) -> Session:
        session = Session(
            key=str(uuid.uuid4()).upper(),
            cookie=secrets.token_hex(20),
            user=user,
            login_time=lab_now,
            ip=ip,
            user_agent=user_agent,
            last_active=self._now(),
            last_active_time=lab_now,
        )
        with self._lock:
            self._by_cookie[session.cookie] = session
        return session

    def lookup(self, cookie: str | None, lab_now=None) -> Session | None:
        """The live session of a cookie (touching it), or None."""
        if not cookie:
            return None
        expired = None
        with self._lock:
            session = self._by_cookie.get(cookie)
            if session is None:
                return None
            now = self._now()
            if now - session.last_active > self.timeout:
                expired = self._by_cookie.pop(cookie)
            else:
                session.last_active = now
                session.last_active_time = lab_now or session.last_active_time
                session.calls += 1
        if expired is not None:
            log.info("session of %s expired", expired.user)
            self._ended(expired)
            return None
        return session

    def end(self, session: Session) -> None:
        with self._lock:
            if self._by_cookie.pop(session.cookie, None) is None:
                return
        self._ended(session)

    def expire_all(self) -> int:
        """The control API's 'every session times out now'; returns how many ended."""
        with self._lock:
            ended = list(self._by_cookie.values())
            self._by_cookie.clear()
        for session in ended:
            self._ended(session)
        return len(ended)

    def sweep(self) -> None:
        now = self._now()
        with self._lock:
            old = [s for s in self._by_cookie.values() if now - s.last_active > self.timeout]
            for s in old:
                self._by_cookie.pop(s.cookie, None)
        for s in old:
            self._ended(s)

    def all(self) -> list[Session]:
        with self._lock:
            return list(self._by_cookie.values())

    def _ended(self, session: Session) -> None:
        for callback in self.on_end:
            try:
                callback(session)
            except Exception:
                log.exception("cleaning up session %s", session.key)


class SessionManager(ManagedObjectBase):
    vim_type = vim.SessionManager
    volatile = frozenset({"currentSession", "sessionList"})

    def __init__(self, registry, moid, vcenter, user: str, password: str):
        super().__init__(registry, moid)
        self.vcenter = vcenter
        self.user = user
        self.password = password

    @soap_method("Login", anonymous=True)
    def login(self, call: Call, userName, password, locale=None):
        user_ok = hmac.compare_digest(userName.lower().encode(), self.user.lower().encode())
        pass_ok = hmac.compare_digest(password.encode(), self.password.encode())
        if not (user_ok and pass_ok):
            log.info("login refused for user %r", userName)
            raise InvalidLogin()
        if call.session is not None:  # a second Login on a session replaces it
            self.vcenter.sessions.end(call.session)
        session = self.vcenter.sessions.create(
            self.user, call.client_ip, call.user_agent, self.vcenter.clock.now()
        )
        call.session = session
        call.cookie_to_set = session.cookie
        self.vcenter.events.post_login(session)
        return session.user_session()

    @soap_method("Logout")
    def logout(self, call: Call):
        self.vcenter.events.post_logout(call.session)
        self.vcenter.sessions.end(call.session)

    @soap_method("SessionIsActive")
    def session_is_active(self, call: Call, sessionID, userName):
        return any(
            s.key == sessionID and s.user.lower() == userName.lower()
            for s in self.vcenter.sessions.all()
        )

    @soap_method("TerminateSession")
    def terminate_session(self, call: Call, sessionId):
        wanted = set(sessionId)
        for session in self.vcenter.sessions.all():
            if session.key in wanted:
                self.vcenter.sessions.end(session)

    def prop_currentSession(self):
        call = current_call.get()
        if call is None or call.session is None:
            return None
        return call.session.user_session()

    def prop_sessionList(self):
        return typed_array(vim.UserSession, [s.user_session() for s in self.vcenter.sessions.all()])

    def prop_defaultLocale(self):
        return "en"

    def prop_supportedLocaleList(self):
        return typed_array(str, ["en"])

    def prop_messageLocaleList(self):
        return typed_array(str, ["en"])

    def prop_message(self):
        return None


def require_session(call: Call, obj=None) -> None:
    if call.session is None:
        raise NotAuthenticated(obj)
