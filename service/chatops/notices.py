"""Telling a chat that a run it started has ended: Slack Block Kit, a Teams Adaptive Card, Mattermost text.

Posts go only to the platform's own hosts (hooks.slack.com), the configured webhook
URLs' hosts, or AZML_CALLBACK_HOSTS; redirects are not followed, and a refused URL is
logged (its host only), never fetched. (slack_sdk's WebhookClient follows redirects
through urllib, so the post is made here with httpx, as the callbacks are.)
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import Any

import httpx

from amllib.settings import Settings
from service.chatops.commands import run_link, summary
from service.core.delivery import host_of, notice_url_allowed, post_with_retry
from service.core.job_kinds import Notify
from service.core.messages import slack_message, teams_card
from service.core.schemas import run_title

log = logging.getLogger("service")
RESPONSE_URL_SECONDS = 30 * 60  # Slack and Mattermost honour a response_url this long
ATTEMPTS = 3


def destination(settings: Settings, notify: Notify) -> str | None:
    """Where a finished run's notice goes: the command's response_url while it is valid, else the webhook."""
    platform = notify.get("platform")
    fresh = time.time() - float(notify.get("at", 0)) < RESPONSE_URL_SECONDS
    if platform in ("slack", "mattermost") and fresh and notify.get("response_url"):
        return notify["response_url"]
    if platform == "slack":
        return settings.slack_webhook_url
    if platform == "teams":
        return settings.teams_webhook_url
    return None


async def post_notice(
    settings: Settings, notify: Notify, payload: dict[str, Any], *, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """POST the notice, retrying a failure; returns the outcome to record on the job."""
    url = destination(settings, notify)
    platform = str(notify.get("platform"))
    if not url:
        return "no destination (the response_url expired and no webhook is configured)"
    if not notice_url_allowed(settings, url, platform=platform):
        log.warning("chat notice refused: host %r is not allowed for %s", host_of(url), platform)
        return "refused: the destination's host is not allowed"
    delivered, what = await post_with_retry(
        url,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        attempts=ATTEMPTS,
        transport=transport,
    )
    if delivered:
        return f"delivered ({what})"
    log.warning("chat notice to %s failed: %s", platform, what)
    return f"failed: {what}"


def duration_text(body: dict[str, Any]) -> str:
    if not body.get("started_at") or not body.get("finished_at"):
        return ""
    seconds = (datetime.fromisoformat(body["finished_at"]) - datetime.fromisoformat(body["started_at"])).total_seconds()
    return f" in {seconds:.0f} s" if seconds < 120 else f" in {seconds / 60:.1f} min"


async def notify_end(settings: Settings, body: dict[str, Any], notify: Notify) -> str:
    """Post the outcome of a run a chat started (status, metrics, model version, duration, error, link)."""
    lines = summary(settings, body)
    headline = f"Run {run_title(body)} {body['status']}{duration_text(body)}"
    platform = notify.get("platform")
    if platform == "teams":
        payload = teams_card(headline, lines[1:], run_link(settings, body["id"]))
    elif platform == "slack":
        payload = slack_message(headline, lines[1:])
    else:
        payload = {"response_type": "in_channel", "text": "\n".join([headline, *lines[1:]])}
    return await post_notice(settings, notify, payload)
