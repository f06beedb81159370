"""Browser sessions for the dashboard: a signed, expiring cookie standing for one API token.

`EventSource` cannot send an Authorization header, so a browser logs in once with a
token and then carries `azml_session` (HttpOnly, SameSite=Strict). The cookie holds
the token's role and a fingerprint of it, never the token: removing a token from
AZML_API_TOKENS ends its sessions. A write made with the cookie must also carry the
session's CSRF token (X-CSRF-Token), which only the service's own pages know.
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

COOKIE = "azml_session"
CSRF_HEADER = "x-csrf-token"
LIFETIME = 12 * 3600


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Session:
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
        self._key = _load_key(home / ".ui-session-key")
        self._roles = {fingerprint(t): "full" for t in full} | {fingerprint(t): "read" for t in read if t not in full}
        self._names = {fingerprint(t): n for t, n in {**read, **full}.items()}

    def role_of(self, token: str) -> str | None:
        found = None
        for known, role in self._roles.items():  # every one compared, in constant time
            if hmac.compare_digest(known, fingerprint(token)):
                found = role
        return found

    def issue(self, token: str) -> str | None:
        """A cookie value for a valid token; None for an unknown one."""
        role = self.role_of(token)
        if role is None:
            return None
        payload = {"role": role, "fp": fingerprint(token), "exp": int(time.time()) + LIFETIME}
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def check(self, value: str) -> Session | None:
        """The session a cookie stands for, if it is ours, unexpired, and its token is still configured."""
        body, _, signature = value.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            role, fp, expires = str(payload["role"]), str(payload["fp"]), int(payload["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires < time.time() or self._roles.get(fp) != role:
            return None
        return Session(role=role, name=self._names.get(fp, "dashboard"), fingerprint=fp, expires=expires, value=value)

    def csrf(self, session: Session) -> str:
        return self._sign("csrf:" + session.value)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def _load_key(path: Path) -> bytes:
    """A random key made once, readable only by the service's user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
        return key
