"""Browser sessions for the dashboard: a signed, expiring cookie standing for one API token.

`EventSource` cannot send an Authorization header, so a browser logs in once with a
token and then carries `azml_session` (HttpOnly, SameSite=Strict). The cookie holds a
session id, the token's role and a keyed fingerprint of it (an HMAC with the session
key, so the cookie says nothing about the token to anyone without the key), never the
token: removing a token from AZML_API_TOKENS ends its sessions. Signing out revokes the
session id on the server (kept in the job store until the cookie would have expired), so
a copied cookie stops working too, and open event streams of that session close. A
write made with the cookie must also carry the session's CSRF token (X-CSRF-Token),
which only the service's own pages know.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from amllib.errors import ConfigError

COOKIE = "azml_session"
CSRF_HEADER = "x-csrf-token"
LIFETIME = 12 * 3600
MIN_KEY_BYTES = 32
REFRESH = 1.0  # how often revocations made by other replicas are read from the store


class Revocations(Protocol):
    """Where revoked session ids are kept (the job store), so a restart still refuses them."""

    def revoked_sessions(self, *, now: float) -> dict[str, float]: ...

    async def revoke_session(self, session_id: str, *, expires: float) -> None: ...


@dataclass(frozen=True)
class Session:
    session_id: str
    role: str  # "full" or "read"
    name: str  # the token's name: who the browser acts as
    fingerprint: str
    expires: int
    value: str  # the cookie as sent

    @property
    def may_write(self) -> bool:
        return self.role == "full"


class SessionSigner:
    """Signs and checks session cookies with a key kept under AZML_HOME (so restarts keep sessions)."""

    def __init__(self, home: Path, *, full: dict[str, str], read: dict[str, str]) -> None:
        """full and read map each token to its name (Settings.named_tokens)."""
        self._key = load_key(home / ".ui-session-key")
        self._roles = {self.fingerprint(t): "full" for t in full}
        self._roles |= {self.fingerprint(t): "read" for t in read if t not in full}
        self._names = {self.fingerprint(t): n for t, n in {**read, **full}.items()}
        self._revoked: dict[str, float] = {}
        self._store: Revocations | None = None
        self._read_at = 0.0

    def fingerprint(self, token: str) -> str:
        return self._sign("token:" + token)[:32]

    def attach(self, store: Revocations) -> None:
        """Keep revocations in the job store from now on, and load the ones made before this start."""
        self._store = store
        self._read_at = time.monotonic()
        self._revoked = store.revoked_sessions(now=time.time())

    def role_of(self, token: str) -> str | None:
        found, given = None, self.fingerprint(token)
        for known, role in self._roles.items():  # every one compared, in constant time
            if hmac.compare_digest(known, given):
                found = role
        return found

    def issue(self, token: str) -> str | None:
        """A cookie value for a valid token; None for an unknown one."""
        role = self.role_of(token)
        if role is None:
            return None
        payload = {
            "sid": secrets.token_hex(16),
            "role": role,
            "fp": self.fingerprint(token),
            "exp": int(time.time()) + LIFETIME,
        }
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def check(self, value: str) -> Session | None:
        """The session a cookie stands for, if it is ours, unexpired, not revoked, and its token still configured."""
        body, _, signature = value.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            sid, role, fp, expires = str(payload["sid"]), str(payload["role"]), str(payload["fp"]), int(payload["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time() or self._roles.get(fp) != role or self.revoked(sid):
            return None
        name = self._names.get(fp, "dashboard")
        return Session(session_id=sid, role=role, name=name, fingerprint=fp, expires=expires, value=value)

    def revoked(self, session_id: str) -> bool:
        """Revoked here or on any other replica (their revocations are read at most REFRESH seconds late)."""
        if self._store is not None and time.monotonic() - self._read_at > REFRESH:
            self._read_at = time.monotonic()
            self._revoked = self._unexpired() | self._store.revoked_sessions(now=time.time())
        return session_id in self._revoked

    def _unexpired(self) -> dict[str, float]:
        """The revocations still worth holding: a cookie past its expiry is refused anyway."""
        now = time.time()
        return {sid: expires for sid, expires in self._revoked.items() if expires >= now}

    async def revoke(self, session: Session) -> None:
        """End a session for good: this cookie, and every copy of it, is refused from now on."""
        self._revoked = self._unexpired()
        self._revoked[session.session_id] = session.expires
        if self._store is not None:
            await self._store.revoke_session(session.session_id, expires=session.expires)

    def csrf(self, session: Session) -> str:
        return self._sign("csrf:" + session.value)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def load_key(path: Path) -> bytes:
    """The session key: made once (random, readable only by the service's user); a short or damaged one is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_bytes(MIN_KEY_BYTES)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"the dashboard's session key {path} is not {MIN_KEY_BYTES} or more bytes of hex; "
            "delete the file and a new key is made at the next start (signed-in browsers sign in again)"
        )
    return key
