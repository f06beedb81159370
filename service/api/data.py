"""POST /data: an archive body, multipart files, or a server folder under AZML_DATA_ROOT."""

from __future__ import annotations

import json
import shutil
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from amllib.errors import InvalidInput, quoted
from amllib.paths import resolve_inside, safe_relpath
from service.actions import find, page
from service.api.common import accept, answer
from service.core.delivery import check_callback_url
from service.core.schemas import MAX_PATH, DataFolderRequest
from service.errors import UnsupportedMedia
from service.http import uploads
from service.http.deps import CallbackUrlQuery, Caller, Cursor, IdempotencyKey, Limit, Svc, Wait
from service.http.openapi import BODY_ERRORS, DataJob, errors, job, page_of, upload_body

router = APIRouter(tags=["data"])


def _target_path(svc: Svc, path: str | None) -> str:
    path = path or svc.settings.datapath
    if not path:
        raise InvalidInput("path is required (query ?path=, no AZML_DATAPATH default)")
    return str(safe_relpath(path, what="path"))


async def _from_folder(svc: Svc, request: Request) -> tuple[dict, str | None]:
    """The JSON body was already read and capped by the request limits middleware."""
    body = await request.body()
    try:
        folder = DataFolderRequest.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from exc
    except ValueError as exc:  # not UTF-8 (the middleware refuses that first; this keeps the route safe alone)
        raise InvalidInput("the body is not valid JSON: it is not UTF-8 text") from exc
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    root = svc.settings.data_root
    if root is None:
        raise InvalidInput("uploading a server folder is off: AZML_DATA_ROOT is not set")
    source = resolve_inside(root, folder.data_dir, what="data_dir")
    if not source.is_dir():
        raise InvalidInput(f"data_dir {quoted(folder.data_dir)} is not a folder under AZML_DATA_ROOT")
    return {"source": "folder", "data_dir": str(source)}, folder.callback_url


async def _received(svc: Svc, request: Request, media: str) -> dict:
    staging = svc.backend.staging_dir()
    try:
        summary = await uploads.receive(
            request.stream(),
            content_type=request.headers.get("content-type", ""),
            declared_length=request.headers.get("content-length"),
            staging=staging,
            limits=uploads.Limits(svc.settings.max_upload_bytes, svc.settings.max_upload_files),
            timeout=svc.settings.body_timeout,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    source = "multipart" if media == uploads.MULTIPART else "archive"
    return {"source": source, "staging": str(staging), "summary": summary.__dict__}


@router.post(
    "/data",
    status_code=202,
    summary="Upload a data folder to the datastore",
    responses=job(DataJob, accepted=True) | errors(*BODY_ERRORS, 415),
    openapi_extra={"requestBody": upload_body(DataFolderRequest)},
)
async def upload_data(
    svc: Svc,
    caller: Caller,
    request: Request,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
    path: Annotated[
        str | None, Query(max_length=MAX_PATH, description="datastore path (default AZML_DATAPATH)")
    ] = None,
    callback_url: CallbackUrlQuery = None,
) -> JSONResponse:
    target = _target_path(svc, path)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        spec, body_callback = await _from_folder(svc, request)
        callback = check_callback_url(body_callback or callback_url, svc.settings.callback_host_set)
        fingerprint = {**spec}
    elif media in uploads.UPLOAD_TYPES:
        callback = check_callback_url(callback_url, svc.settings.callback_host_set)  # before the body streams
        spec = await _received(svc, request, media)
        fingerprint = {"digest": spec["summary"]["digest"]}
    else:
        raise UnsupportedMedia(
            f"content type {quoted(media or '(none)')} is not accepted: send a tar, tar.gz or zip "
            "archive, multipart/form-data 'files' parts, or JSON {\"data_dir\": ...}"
        )
    spec["path"] = target
    try:
        response = await accept(
            svc,
            kind="data",
            spec=spec,
            fingerprint={**fingerprint, "path": target},
            idempotency_key=idempotency_key,
            callback_url=callback,
            wait=wait,
            created_by=caller,
        )
    except BaseException:
        _discard(spec)
        raise
    if response.headers.get("Idempotent-Replayed"):
        _discard(spec)  # the original job has its own copy
    return response


def _discard(spec: dict) -> None:
    if spec.get("staging"):
        shutil.rmtree(spec["staging"], ignore_errors=True)


@router.get("/data", summary="Data uploads, newest first", responses=errors(ok={"model": page_of(DataJob)}))
async def list_uploads(svc: Svc, cursor: Cursor = None, limit: Limit = 50) -> dict:
    return await page(svc, "data", status=None, experiment=None, cursor=cursor, limit=limit)


@router.get("/data/{job_id}", summary="A data upload job", responses=job(DataJob, accepted=False))
async def get_upload(svc: Svc, job_id: str, wait: Wait = None) -> JSONResponse:
    return await answer(svc, await find(svc, job_id, "data"), wait=wait)
