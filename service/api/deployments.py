"""Online endpoints: deploy a model version (blue/green, smoke-tested, a canary), roll back, read, keys, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from amllib.errors import InvalidInput
from amllib.names import check_name
from service import deployments
from service.actions import find
from service.api.common import accept, answer
from service.core.delivery import check_callback_url
from service.core.schemas import DeployRequest, KeyRequest, RollbackRequest
from service.http.answers import Deleted, EndpointDetail, EndpointKeys, EndpointParams, Endpoints, EndpointTry
from service.http.deps import Caller, IdempotencyKey, Svc, Wait
from service.http.openapi import BODY_ERRORS, DeployJob, errors, job, ok

router = APIRouter(tags=["deployments"])
Endpoint = Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9-]{2,31}$", description="the endpoint's name")]
Slot = Annotated[Literal["blue", "green"] | None, Query(description="this deployment (default: the live one)")]


@router.post(
    "/deployments",
    status_code=202,
    summary="Deploy a model version to an endpoint: beside the live one, smoke-tested, then given traffic",
    responses=job(DeployJob, accepted=True) | errors(*BODY_ERRORS),
)
async def deploy(
    svc: Svc, caller: Caller, request: DeployRequest, idempotency_key: IdempotencyKey = None, wait: Wait = None
) -> JSONResponse:
    callback = check_callback_url(request.callback_url, svc.settings.callback_host_set)
    model = request.model or svc.settings.model
    if not model:
        raise InvalidInput("model is required (no AZML_MODEL default)")
    check_name(model, what="model")
    svc.worker.endpoints  # noqa: B018 - a backend without endpoints says so now, not in the job
    spec = {
        "action": "deploy",
        "endpoint": request.endpoint,
        "model": model,
        "version": request.version,
        "alias": request.alias,
        "follow": request.follow,
        "traffic": request.traffic,
        "samples": request.samples,
    }
    return await accept(
        svc,
        kind="deploy",
        spec=spec,
        fingerprint=request.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        callback_url=callback,
        wait=wait,
        created_by=caller,
    )


@router.get(
    "/deployments/jobs/{job_id}", summary="A deployment or rollback job", responses=job(DeployJob, accepted=False)
)
async def get_deploy_job(svc: Svc, job_id: str, wait: Wait = None) -> JSONResponse:
    return await answer(svc, await find(svc, job_id, "deploy"), wait=wait)


@router.get(
    "/deployments",
    response_model=None,
    summary="Every endpoint: what serves, traffic, health, scoring URL",
    responses=errors(ok=ok(Endpoints)),
)
async def list_endpoints(svc: Svc) -> dict:
    return await deployments.list_endpoints(svc)


@router.get(
    "/deployments/{endpoint}",
    response_model=None,
    summary="One endpoint: versions live, traffic, health, requests and latency, the history of its changes",
    responses=errors(404, ok=ok(EndpointDetail)),
)
async def get_endpoint(svc: Svc, endpoint: Endpoint) -> dict:
    return await deployments.endpoint(svc, endpoint)


@router.post(
    "/deployments/{endpoint}/rollback",
    status_code=202,
    summary="All traffic back to the version kept beside the live one (smoke-tested first)",
    responses=job(DeployJob, accepted=True) | errors(404, *BODY_ERRORS),
)
async def rollback(
    svc: Svc,
    caller: Caller,
    endpoint: Endpoint,
    request: RollbackRequest | None = None,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
) -> JSONResponse:
    request = request or RollbackRequest()
    callback = check_callback_url(request.callback_url, svc.settings.callback_host_set)
    await deployments.known(svc, endpoint)
    spec = {"action": "rollback", "endpoint": endpoint, "samples": request.samples}
    return await accept(
        svc,
        kind="deploy",
        spec=spec,
        fingerprint={"rollback": endpoint, **request.model_dump(mode="json")},
        idempotency_key=idempotency_key,
        callback_url=callback,
        wait=wait,
        created_by=caller,
    )


@router.get(
    "/deployments/{endpoint}/params",
    response_model=None,
    summary="The live version's features: each one's categories, or 0 for a number",
    responses=errors(404, 409, ok=ok(EndpointParams)),
)
async def endpoint_params(svc: Svc, endpoint: Endpoint, slot: Slot = None) -> dict:
    return await deployments.params(svc, endpoint, slot=slot)


@router.post(
    "/deployments/{endpoint}/try",
    response_model=None,
    summary="Try a request: POSTed to the endpoint's /api/predict with its key; the endpoint's answer and status",
    responses=errors(404, 409, ok=ok(EndpointTry)),
)
async def try_endpoint(
    svc: Svc, endpoint: Endpoint, body: Annotated[dict[str, Any], Body()], slot: Slot = None
) -> dict:
    return await deployments.try_predict(svc, endpoint, body, slot=slot)


@router.delete(
    "/deployments/{endpoint}",
    response_model=None,
    summary="Stop serving and remove the endpoint",
    responses=errors(404, ok=ok(Deleted)),
)
async def delete_endpoint(svc: Svc, endpoint: Endpoint) -> dict:
    return await deployments.delete(svc, endpoint)


@router.post(
    "/deployments/{endpoint}/keys",
    response_model=None,
    summary="The endpoint's two keys (a write token's request: they are secrets)",
    responses=errors(404, ok=ok(EndpointKeys)),
)
async def endpoint_keys(svc: Svc, endpoint: Endpoint) -> dict:
    return await deployments.keys(svc, endpoint)


@router.post(
    "/deployments/{endpoint}/keys/regenerate",
    response_model=None,
    summary="A new primary or secondary key; the old one is refused from then on",
    responses=errors(404, ok=ok(EndpointKeys)),
)
async def regenerate_key(svc: Svc, caller: Caller, endpoint: Endpoint, request: KeyRequest) -> dict:
    return await deployments.regenerate_key(svc, endpoint, request.key, caller=caller)
