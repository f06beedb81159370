"""POST /chatops/slack: a Slack slash command, verified with the app's signing secret by slack_sdk."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from slack_sdk.signature import SignatureVerifier

from amllib.errors import InvalidInput
from service.chatops.commands import ChatRequest, Reply, handle, refused
from service.core.delivery import notice_url_allowed
from service.core.messages import slack_escape
from service.errors import NotAuthenticated
from service.http.answers import ChatReply
from service.http.deps import Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["chatops"])


def slack_signed(secret: str | None, body: bytes, headers: Mapping[str, str]) -> bool:
    """slack_sdk's check, given a timestamp it can read (it calls int() on the header: "abc" or "1.5" raised)."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not secret or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    return SignatureVerifier(secret).is_valid(body, timestamp, headers.get("x-slack-signature"))


def form_fields(body: bytes) -> dict[str, str]:
    """The first value of each field of a form-encoded body (Slack's and Mattermost's commands)."""
    return {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}


def checked_response_url(svc: Svc, url: str, *, platform: str) -> str:
    """A command's response_url, refused (nothing started) unless its host is allowed."""
    if url and not notice_url_allowed(svc.settings, url, platform=platform):
        raise InvalidInput("response_url points at a host this service may not post to")
    return url


def slack_reply(reply: Reply) -> dict[str, Any]:
    """The acknowledgement, shown only to whoever typed the command."""
    return {"response_type": "ephemeral", "text": slack_escape("\n".join([reply.text, *reply.lines]))}


@router.post(
    "/chatops/slack",
    response_model=None,
    summary="A Slack slash command (signed with the app's signing secret)",
    responses=errors(ok=ok(ChatReply)),
)
async def slack_command(svc: Svc, request: Request) -> dict[str, Any]:
    body = await request.body()
    if not slack_signed(svc.settings.slack_signing_secret, body, request.headers):
        refused(
            "slack",
            "no AZML_SLACK_SIGNING_SECRET" if not svc.settings.slack_signing_secret else "bad or stale signature",
        )
        raise NotAuthenticated("the request is not signed with this service's Slack signing secret, or is stale")
    fields = form_fields(body)
    response_url = checked_response_url(svc, fields.get("response_url", ""), platform="slack")
    chat = ChatRequest(
        platform="slack",
        user_id=fields.get("user_id", ""),
        text=fields.get("text", ""),
        retry_key=f"{fields.get('team_id', '')}:{fields.get('trigger_id') or hashlib.sha256(body).hexdigest()}",
        notify={"platform": "slack", "response_url": response_url, "at": time.time()},
    )
    return slack_reply(await handle(svc, chat))
