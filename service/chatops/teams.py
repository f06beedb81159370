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
from typing import Any

from fastapi import APIRouter, Request

from amllib.errors import InvalidInput
from service.chatops.commands import ChatRequest, handle
from service.deps import Svc
from service.errors import NotAuthenticated
from service.openapi import errors

router = APIRouter(tags=["chatops"])
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


def command_text(message: str) -> str:
    """The text after the bot's @mention, without Teams' HTML."""
    text = html.unescape(_TAG.sub(" ", _MENTION.sub(" ", message)))
    return " ".join(text.replace("\xa0", " ").split())


@router.post("/chatops/teams", summary="A Microsoft Teams outgoing webhook (HMAC-signed)", responses=errors())
async def teams_message(svc: Svc, request: Request) -> dict[str, Any]:
    body = await request.body()
    secret = svc.settings.teams_hmac_secret
    if not secret or not teams_signature_valid(secret, body, request.headers.get("authorization", "")):
        raise NotAuthenticated("the message is not signed with this service's Teams outgoing webhook token")
    try:
        activity = json.loads(body)
        sender = activity.get("from") or {}
        text = command_text(str(activity.get("text") or ""))
    except (ValueError, AttributeError) as exc:
        raise InvalidInput("the body is not a Teams activity") from exc
    chat = ChatRequest(
        platform="teams",
        user_id=str(sender.get("aadObjectId") or sender.get("id") or ""),
        text=text,
        retry_key=str(activity.get("id") or hashlib.sha256(body).hexdigest()),
        notify={"platform": "teams", "at": time.time()},
    )
    reply = await handle(svc, chat)
    return {"type": "message", "text": "\n\n".join([reply.text, *reply.lines])}
