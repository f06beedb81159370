"""Which version of a model is in production: aliases, history, version notes, approvals (service/promotions.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from amllib.promotion import Gate
from service import promotions
from service.core.schemas import AliasRequest, Decision, VersionChange
from service.http.answers import (
    Alias,
    Aliases,
    AliasHistory,
    Approval,
    ApprovalAsked,
    Approvals,
    ModelVersion,
    MoveCheck,
)
from service.http.deps import Caller, Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["models"])
Version = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
AliasName = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="e.g. production, staging")]


@router.get(
    "/models/{name}/aliases",
    response_model=None,
    summary="Every alias of a model: which version, since when, by whom",
    responses=errors(404, ok=ok(Aliases)),
)
async def list_aliases(svc: Svc, name: str) -> dict:
    return await promotions.aliases(svc, name)


@router.put(
    "/models/{name}/aliases/{alias}",
    response_model=None,
    summary="Point an alias at a version (through its gate; a protected alias asks for an approval: 202)",
    responses=errors(404, 409, ok=ok(Alias)) | {202: ok(ApprovalAsked, "a protected alias: the approval asked for")},
)
async def set_alias(svc: Svc, caller: Caller, name: str, alias: AliasName, request: AliasRequest) -> JSONResponse:
    asked = promotions.Asked(
        alias=alias,
        version=request.version,
        run_id=request.run_id,
        use_best=request.use_best,
        reason=request.reason,
        gate=request.gate.model_dump() if request.gate else None,
    )
    outcome, body = await promotions.promote(svc, name, asked, caller=caller)
    if outcome == "pending":
        return JSONResponse({"approval": body}, status_code=202)
    return JSONResponse(body)


@router.get(
    "/models/{name}/aliases/{alias}/check",
    response_model=None,
    summary="What moving an alias would do, changing nothing: the candidate beside the holder, the gate's verdict",
    responses=errors(404, ok=ok(MoveCheck)),
)
async def check_alias_move(
    svc: Svc,
    name: str,
    alias: AliasName,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    run_id: Annotated[str | None, Query(max_length=255)] = None,
    use_best: bool = False,
    gate: Annotated[str | None, Query(max_length=200, description="metric:max|min:min_delta")] = None,
) -> dict:
    given = Gate.parse(gate).as_dict() if gate else None
    asked = promotions.Asked(alias=alias, version=version, run_id=run_id, use_best=use_best, gate=given)
    return await promotions.check(svc, name, asked)


@router.delete(
    "/models/{name}/aliases/{alias}",
    response_model=None,
    summary="Remove an alias (a protected one asks for an approval: 202)",
    responses=errors(404, ok=ok(Alias)) | {202: ok(ApprovalAsked, "a protected alias: the approval asked for")},
)
async def remove_alias(
    svc: Svc, caller: Caller, name: str, alias: AliasName, reason: Annotated[str | None, Body(embed=True)] = None
) -> JSONResponse:
    outcome, body = await promotions.promote(
        svc, name, promotions.Asked(alias, remove=True, reason=reason), caller=caller
    )
    return JSONResponse(
        {"approval": body} if outcome == "pending" else body, status_code=202 if outcome == "pending" else 200
    )


@router.get(
    "/models/{name}/history",
    response_model=None,
    summary="Every alias change of a model, newest first",
    responses=errors(404, ok=ok(AliasHistory)),
)
async def alias_history(svc: Svc, name: str) -> dict:
    return await promotions.history(svc, name)


@router.patch(
    "/models/{name}/versions/{version}",
    response_model=None,
    summary="A version's description and tags; archive (never latest, best or a new alias) or restore it",
    responses=errors(404, 409, ok=ok(ModelVersion)),
)
async def change_version(svc: Svc, caller: Caller, name: str, version: Version, request: VersionChange) -> dict:
    return await promotions.change_version(
        svc,
        name,
        version,
        description=request.description,
        tags=request.tags,
        archived=request.archived,
        caller=caller,
    )


@router.get(
    "/approvals",
    response_model=None,
    summary="Approvals of protected alias moves, newest first",
    responses=errors(ok=ok(Approvals)),
)
async def list_approvals(
    svc: Svc, status: Literal["pending", "approving", "approved", "rejected", "expired", "failed"] | None = None
) -> dict:
    return await promotions.approvals(svc, status=status)


@router.get(
    "/approvals/{approval_id}", response_model=None, summary="One approval", responses=errors(404, ok=ok(Approval))
)
async def get_approval(svc: Svc, approval_id: str) -> dict:
    return await promotions.approval(svc, approval_id)


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=None,
    summary="Approve: the move is made now (its gate judged again); never your own request",
    responses=errors(403, 404, 409, ok=ok(Approval)),
)
async def approve(svc: Svc, caller: Caller, approval_id: str, request: Decision | None = None) -> dict:
    return await promotions.decide(
        svc, approval_id, approve=True, caller=caller, note=request.note if request else None
    )


@router.post(
    "/approvals/{approval_id}/reject",
    response_model=None,
    summary="Reject: the alias stays where it is; never your own request",
    responses=errors(403, 404, 409, ok=ok(Approval)),
)
async def reject(svc: Svc, caller: Caller, approval_id: str, request: Decision | None = None) -> dict:
    return await promotions.decide(
        svc, approval_id, approve=False, caller=caller, note=request.note if request else None
    )
