"""GET /notifications: the operator's subscriptions (never their URLs) and what was delivered to them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from amllib.times import iso
from service.core.subscriptions import subscriptions
from service.http.answers import Notifications
from service.http.deps import Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["notifications"])
Status = Literal["sending", "delivered", "failed", "unknown"]


@router.get(
    "/notifications",
    response_model=None,
    summary="Subscriptions (AZML_NOTIFY) and their deliveries, newest first",
    responses=errors(ok=ok(Notifications)),
)
async def list_notifications(
    svc: Svc,
    status: Annotated[Status | None, Query(description="only deliveries in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict:
    found = await svc.store.read(svc.store.notifications, limit=limit, status=status)
    return {
        "subscriptions": [sub.public() for sub in subscriptions(svc.settings)],
        "deliveries": [
            {**row, "created_at": iso(row["created_at"]), "updated_at": iso(row["updated_at"])} for row in found
        ],
    }
