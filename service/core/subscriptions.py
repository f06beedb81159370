"""Who hears about registry events: the operator's AZML_NOTIFY subscriptions, checked at start-up.

A subscription is a Slack, Teams or Mattermost incoming webhook, or a generic webhook whose
body is signed (X-Signature, as callbacks are), with a filter by event and by model. The URLs
are the operator's, not a caller's, so they are not held to AZML_CALLBACK_HOSTS; they often
carry a secret in their path, so no message here ever repeats one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from amllib.errors import ConfigError
from amllib.settings import Settings

EVENTS = (
    "run.failed",
    "model.registered",
    "alias.changed",
    "approval.requested",
    "approval.decided",
    "deployment.changed",
    "deployment.failed",
    "schedule.fired",
    "schedule.failed",
)
KINDS = ("slack", "teams", "mattermost", "webhook")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FIELDS = frozenset({"name", "to", "url", "events", "models", "secret"})


@dataclass(frozen=True)
class Subscription:
    name: str
    to: str
    url: str
    events: frozenset[str]
    models: frozenset[str] | None  # None: every model
    secret: str | None = None

    def wants(self, event: str, model: str | None) -> bool:
        return event in self.events and (self.models is None or model in self.models)

    def public(self) -> dict[str, Any]:
        """What GET /notifications shows of it: never the URL or the secret."""
        return {
            "name": self.name,
            "to": self.to,
            "events": sorted(self.events),
            "models": None if self.models is None else sorted(self.models),
        }


def subscriptions(settings: Settings) -> list[Subscription]:
    """AZML_NOTIFY read and checked; ConfigError naming the entry and what is wrong (never its URL)."""
    text = settings.notify.strip()
    if not text:
        return []
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"AZML_NOTIFY is not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(entries, list):
        raise ConfigError('AZML_NOTIFY is a JSON list of subscriptions: [{"name": …, "to": …, "url": …}]')
    found = [_subscription(entry, n, settings) for n, entry in enumerate(entries, 1)]
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise ConfigError("AZML_NOTIFY: each subscription needs a name of its own")
    return found


def _subscription(entry: object, n: int, settings: Settings) -> Subscription:
    where = f"AZML_NOTIFY entry {n}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not an object")
    unknown = sorted(set(entry) - FIELDS)
    if unknown:
        raise ConfigError(f"{where} has unknown fields {', '.join(map(repr, unknown[:5]))}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"{where}: name is 1 to 64 letters, digits, '_', '.' or '-'")
    where = f"AZML_NOTIFY subscription {name!r}"
    to = entry.get("to")
    if to not in KINDS:
        raise ConfigError(f"{where}: to is one of {', '.join(KINDS)}")
    url = entry.get("url")
    if not isinstance(url, str) or not _http_url(url):
        raise ConfigError(f"{where}: url must be an http:// or https:// URL with a host (it is not repeated here)")
    events = entry.get("events", list(EVENTS))
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise ConfigError(f"{where}: events is a non-empty list of {', '.join(EVENTS)}")
    wrong = sorted(set(events) - set(EVENTS))
    if wrong:
        raise ConfigError(
            f"{where}: unknown events {', '.join(repr(e[:40]) for e in wrong[:5])}; known: {', '.join(EVENTS)}"
        )
    models = entry.get("models")
    if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
        raise ConfigError(f"{where}: models is a list of model names")
    secret = entry.get("secret")
    if secret is not None and (to != "webhook" or not isinstance(secret, str) or not secret):
        raise ConfigError(f"{where}: secret is a non-empty string, for a webhook only")
    return Subscription(
        name=name,
        to=to,
        url=url,
        events=frozenset(events),
        models=None if models is None else frozenset(models),
        secret=secret or (settings.webhook_secret if to == "webhook" else None),
    )


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and not (parts.username or parts.password)
    except ValueError:
        return False
