"""POST /chatops/teams: a Microsoft Teams outgoing webhook, verified by its HMAC, answered at once."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from amllib.errors import InvalidInput
from service.chatops.commands import ChatRequest, handle, refused
from service.errors import NotAuthenticated
from service.http.answers import ChatReply
from service.http.deps import Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["chatops"])
FRESH_SECONDS = 300  # as Slack's own signature check: a message older than 5 minutes is refused
_MENTION = re.compile(r"<at>.*?</at>", re.S)
_TAG = re.compile(r"<[^>]+>")


def teams_signature_valid(secret_b64: str, body: bytes, header: str) -> bool:
    """Authorization: HMAC <base64 HMAC-SHA256 of the raw body, keyed with the base64-decoded secret>."""
    scheme, _, given = header.partition(" ")
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
    return scheme == "HMAC" and hmac.compare_digest(given.strip().encode(), expected.encode())


def parse_activity(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the activity, its sender) from a signed body; InvalidInput unless both are JSON objects."""
    try:
        activity = json.loads(body)
    except ValueError as exc:
        raise InvalidInput("the body is not a Teams activity (not JSON)") from exc
    sender = activity.get("from") if isinstance(activity, dict) else None
    if not isinstance(activity, dict) or not isinstance(sender or {}, dict):
        raise InvalidInput("the body is not a Teams activity (an object with a 'from' object)")
    return activity, sender or {}


def fresh(stamp: object, *, now: float | None = None) -> bool:
    """Whether an activity's ISO timestamp is within FRESH_SECONDS of now: an old signed message can't be replayed."""
    if not isinstance(stamp, str) or len(stamp) > 40:
        return False
    try:
        sent = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    if sent.tzinfo is None:
        return False
    return abs((now or time.time()) - sent.timestamp()) <= FRESH_SECONDS


def command_text(message: str) -> str:
    """The text after the bot's @mention, without Teams' HTML."""
    text = html.unescape(_TAG.sub(" ", _MENTION.sub(" ", message)))
    return " ".join(text.replace("\xa0", " ").split())


@router.post(
    "/chatops/teams",
    response_model=None,
    summary="A Microsoft Teams outgoing webhook (HMAC-signed)",
    responses=errors(ok=ok(ChatReply)),
)
async def teams_message(svc: Svc, request: Request) -> dict[str, Any]:
    body = await request.body()
    secret = svc.settings.teams_hmac_secret
    if not secret or not teams_signature_valid(secret, body, request.headers.get("authorization", "")):
        refused("teams", "no AZML_TEAMS_HMAC_SECRET" if not secret else "bad HMAC signature")
        raise NotAuthenticated("the message is not signed with this service's Teams outgoing webhook token")
    activity, sender = parse_activity(body)
    if not fresh(activity.get("timestamp")):
        refused("teams", "missing or stale timestamp")
        raise NotAuthenticated(f"the message's timestamp is missing or older than {FRESH_SECONDS // 60} minutes")
    text = command_text(str(activity.get("text") or ""))
    chat = ChatRequest(
        platform="teams",
        user_id=str(sender.get("aadObjectId") or sender.get("id") or ""),
        text=text,
        retry_key=str(activity.get("id") or hashlib.sha256(body).hexdigest()),
        notify={"platform": "teams", "at": time.time()},
    )
    reply = await handle(svc, chat)
    return {"type": "message", "text": "\n\n".join([reply.text, *reply.lines])}
