"""POST /chatops/mattermost: a Mattermost slash command, checked against its token in constant time."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request

from service.chatops.commands import ChatRequest, handle, refused
from service.chatops.slack import form_fields, slack_reply
from service.core.delivery import notice_url_allowed
from service.errors import NotAuthenticated
from service.http.answers import ChatReply
from service.http.deps import Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["chatops"])


@router.post(
    "/chatops/mattermost",
    response_model=None,
    summary="A Mattermost slash command (its token checked)",
    responses=errors(ok=ok(ChatReply)),
)
async def mattermost_command(svc: Svc, request: Request) -> dict[str, Any]:
    body = await request.body()
    fields = form_fields(body)
    expected = svc.settings.mattermost_token
    if not expected or not hmac.compare_digest(fields.get("token", "").encode(), expected.encode()):
        refused("mattermost", "no AZML_MATTERMOST_TOKEN" if not expected else "wrong token")
        raise NotAuthenticated("the command's token is not this service's AZML_MATTERMOST_TOKEN")
    response_url = fields.get("response_url", "")
    if response_url and not notice_url_allowed(svc.settings, response_url, platform="mattermost"):
        # The token checked out, so this is the team's own server: say in the chat what to configure.
        host = urlsplit(response_url).hostname or "?"
        text = (
            f"This service may not post to your Mattermost server ({host}): an admin must add it to "
            "AZML_CALLBACK_HOSTS. Nothing was started."
        )
        return {"response_type": "ephemeral", "text": text}
    chat = ChatRequest(
        platform="mattermost",
        user_id=fields.get("user_id", ""),
        text=fields.get("text", ""),
        retry_key=fields.get("trigger_id") or hashlib.sha256(body).hexdigest(),
        notify={"platform": "mattermost", "response_url": response_url, "at": time.time()},
    )
    return slack_reply(await handle(svc, chat))  # Mattermost reads Slack's reply format
