"""POST /chatops/mattermost: a Mattermost slash command, checked against its token in constant time."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from fastapi import APIRouter, Request

from service.chatops.commands import ChatRequest, handle
from service.chatops.slack import checked_response_url, form_fields, slack_reply
from service.deps import Svc
from service.errors import NotAuthenticated
from service.openapi import errors

router = APIRouter(tags=["chatops"])


@router.post("/chatops/mattermost", summary="A Mattermost slash command (its token checked)", responses=errors())
async def mattermost_command(svc: Svc, request: Request) -> dict[str, Any]:
    body = await request.body()
    fields = form_fields(body)
    expected = svc.settings.mattermost_token
    if not expected or not hmac.compare_digest(fields.get("token", "").encode(), expected.encode()):
        raise NotAuthenticated("the command's token is not this service's AZML_MATTERMOST_TOKEN")
    response_url = checked_response_url(svc, fields.get("response_url", ""), platform="mattermost")
    chat = ChatRequest(
        platform="mattermost",
        user_id=fields.get("user_id", ""),
        text=fields.get("text", ""),
        retry_key=fields.get("trigger_id") or hashlib.sha256(body).hexdigest(),
        notify={"platform": "mattermost", "response_url": response_url, "at": time.time()},
    )
    return slack_reply(await handle(svc, chat))  # Mattermost reads Slack's reply format
