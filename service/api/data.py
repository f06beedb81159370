"""POST /data: an archive body, multipart files, or a server folder under AZML_DATA_ROOT."""

from __future__ import annotations

import json
import shutil
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.formparsers import MultiPartException

from amllib.errors import InvalidInput
from amllib.paths import resolve_inside, safe_relpath
from service import uploads
from service.api.common import accept, answer, find, page
from service.callbacks import check_callback_url
from service.deps import IdempotencyKey, Svc, Wait
from service.errors import TooLarge, UnsupportedMedia
from service.schemas import DataFolderRequest

router = APIRouter(tags=["data"])
MAX_JSON = 64 * 1024


def _target_path(svc: Svc, path: str | None) -> str:
    path = path or svc.settings.datapath
    if not path:
        raise InvalidInput("path is required (query ?path=, no AZML_DATAPATH default)")
    return str(safe_relpath(path, what="path"))


async def _from_folder(svc: Svc, request: Request) -> tuple[dict, str | None]:
    body = await request.body()
    if len(body) > MAX_JSON:
        raise TooLarge("a JSON body is limited to 64 KiB")
    try:
        folder = DataFolderRequest.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    root = svc.settings.data_root
    if root is None:
        raise InvalidInput("uploading a server folder is off: AZML_DATA_ROOT is not set")
    source = resolve_inside(root, folder.data_dir, what="data_dir")
    if not source.is_dir():
        raise InvalidInput(f"data_dir {folder.data_dir!r} is not a folder under AZML_DATA_ROOT")
    return {"source": "folder", "data_dir": str(source)}, folder.callback_url


async def _received(svc: Svc, request: Request, media: str) -> dict:
    limits = uploads.Limits(svc.settings.max_upload_bytes, svc.settings.max_upload_files)
    staging = svc.backend.staging_dir()
    executor = svc.worker.executor
    length = request.headers.get("content-length")
    try:
        if media in uploads.TAR_TYPES:
            summary = await uploads.receive_tar(
                request.stream(), declared_length=length, staging=staging, limits=limits, executor=executor
            )
            source = "archive"
        elif media in uploads.ZIP_TYPES:
            summary = await uploads.receive_zip(
                request.stream(), declared_length=length, staging=staging, limits=limits, executor=executor
            )
            source = "archive"
        else:
            uploads.check_length(length, limits)
            try:
                async with request.form(max_files=limits.max_files, max_fields=100) as form:
                    files = [f for f in form.getlist("files") if not isinstance(f, str)]
                    if not files:
                        raise InvalidInput("multipart body has no 'files' parts")
                    summary = await uploads.receive_files(files, staging=staging, limits=limits, executor=executor)
            except MultiPartException as exc:
                raise InvalidInput(f"bad multipart body: {exc.message}") from exc
            source = "multipart"
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"source": source, "staging": str(staging), "summary": summary.__dict__}


@router.post("/data", status_code=202, summary="Upload a data folder to the datastore")
async def upload_data(
    svc: Svc,
    request: Request,
    idempotency_key: IdempotencyKey = None,
    wait: Wait = None,
    path: Annotated[str | None, Query(description="datastore path (default AZML_DATAPATH)")] = None,
    callback_url: str | None = None,
) -> JSONResponse:
    target = _target_path(svc, path)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        spec, body_callback = await _from_folder(svc, request)
        callback = check_callback_url(body_callback or callback_url, svc.settings.callback_host_set)
        fingerprint = {**spec}
    elif media in uploads.TAR_TYPES | uploads.ZIP_TYPES or media == "multipart/form-data":
        callback = check_callback_url(callback_url, svc.settings.callback_host_set)  # before the body streams
        spec = await _received(svc, request, media)
        fingerprint = {"digest": spec["summary"]["digest"]}
    else:
        raise UnsupportedMedia(
            f"content type {media or '(none)'!r} is not accepted: send a tar, tar.gz or zip "
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


@router.get("/data", summary="Data uploads, newest first")
async def list_uploads(svc: Svc, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
    return page(svc, "data", status=None, experiment=None, cursor=cursor, limit=limit)


@router.get("/data/{job_id}", summary="A data upload job")
async def get_upload(svc: Svc, job_id: str, wait: Wait = None) -> JSONResponse:
    return await answer(svc, find(svc, job_id, "data"), wait=wait)
