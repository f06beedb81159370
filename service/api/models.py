"""Models: fetch a version to the server's disk, list models and versions, download an archive."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse

from amllib.backends.base import tag_number
from amllib.errors import InvalidInput, ModelNotFound, quoted
from amllib.fetch import BEST_BY, build_metadata
from amllib.names import check_name
from amllib.paths import check_folder_target, resolve_inside
from amllib.times import iso
from service.actions import find
from service.api import archives
from service.api.common import accept, answer
from service.core.delivery import check_callback_url
from service.core.schemas import FetchRequest
from service.http.answers import ModelNames, ModelsSummary, ModelVersions
from service.http.deps import Caller, IdempotencyKey, Svc, Wait
from service.http.openapi import ARCHIVE, BODY_ERRORS, FetchJob, errors, job, ok

router = APIRouter(tags=["models"])
Version = Annotated[int, PathParam(ge=1)]


@router.post(
    "/models/fetch",
    status_code=202,
    summary="Write a model version and metadata.json to the server",
    responses=job(FetchJob, accepted=True) | errors(*BODY_ERRORS),
)
async def fetch(
    svc: Svc, caller: Caller, request: FetchRequest, idempotency_key: IdempotencyKey = None, wait: Wait = None
) -> JSONResponse:
    callback = check_callback_url(request.callback_url, svc.settings.callback_host_set)
    model = request.model or svc.settings.model
    if not model:
        raise InvalidInput("model is required (no AZML_MODEL default)")
    check_name(model, what="model")
    root = svc.settings.output_root
    if root is None:
        raise InvalidInput(
            "fetching to the server's disk is off: AZML_OUTPUT_ROOT is not set "
            "(GET /models/{name}/versions/{version}/archive downloads the files instead)"
        )
    output_path = request.output_path or model
    target = resolve_inside(root, output_path, what="output_path")
    check_folder_target(root.resolve(), target, value=output_path, what="output_path")
    spec = {
        "model": model,
        "version": request.version,
        "use_best": request.use_best,
        "alias": request.alias,
        "output_path": str(target.relative_to(root.resolve())),
    }
    return await accept(
        svc,
        kind="fetch",
        spec=spec,
        fingerprint=request.model_dump(mode="json"),
        idempotency_key=idempotency_key,
        callback_url=callback,
        wait=wait,
        created_by=caller,
    )


@router.get("/models/fetch/{job_id}", summary="A fetch job", responses=job(FetchJob, accepted=False))
async def get_fetch(svc: Svc, job_id: str, wait: Wait = None) -> JSONResponse:
    return await answer(svc, await find(svc, job_id, "fetch"), wait=wait)


@router.get("/models", response_model=None, summary="Registered model names", responses=errors(ok=ok(ModelNames)))
async def list_models(svc: Svc) -> dict:
    return {"models": await svc.calls(svc.backend.list_models)}


def model_summary(svc: Svc, name: str) -> dict | None:
    """A model at a glance: how many versions, the latest, the best by accuracy, and accuracy by version."""
    versions = svc.backend.list_model_versions(name)
    if not versions:
        return None  # removed since it was listed
    scored = [(version, tag_number(version.tags.get(BEST_BY))) for version in versions]
    ranked = [(score, version.version, version) for version, score in scored if score is not None]
    best = max(ranked, key=lambda item: (item[0], item[1])) if ranked else None
    latest = versions[-1]
    return {
        "name": name,
        "versions": len(versions),
        "latest": {"version": latest.version, "accuracy": tag_number(latest.tags.get(BEST_BY))},
        "best": {"version": best[1], "accuracy": best[0]} if best else None,
        "last_registered": iso(max(version.created_at for version in versions)),
        "accuracy": [[version.version, score] for version, score in scored if score is not None],
    }


@router.get(
    "/models/summary",
    response_model=None,
    summary="Every model at a glance: version count, latest, best by accuracy, accuracy by version",
    responses=errors(ok=ok(ModelsSummary)),
)
async def models_summary(svc: Svc) -> dict:
    names = await svc.calls(svc.backend.list_models)
    found = await asyncio.gather(*(svc.calls(model_summary, svc, name) for name in names))
    return {"models": [summary for summary in found if summary is not None]}


@router.get(
    "/models/{name}/versions",
    response_model=None,
    summary="A model's versions with their tags, oldest first",
    responses=errors(404, ok=ok(ModelVersions)),
)
async def list_versions(svc: Svc, name: str) -> dict:
    """Each version with the aliases it holds and whether it is archived (the model's alias book)."""
    versions = await svc.calls(svc.backend.list_model_versions, name)
    if not versions:
        raise ModelNotFound(f"model {quoted(name)} not found")
    book = await svc.calls(svc.backend.read_aliases, name)
    held: dict[int, list[str]] = {}
    for alias, found in sorted(book.aliases.items()):
        held.setdefault(int(found["version"]), []).append(alias)
    return {
        "name": name,
        "versions": [
            {
                **v.__dict__,
                "created_at": iso(v.created_at),
                "aliases": held.get(v.version, []),
                "archived": v.version in book.archived,
            }
            for v in versions
        ],
    }


def _send_archive(svc: Svc, name: str, version: int) -> StreamingResponse:
    chosen = svc.backend.resolve_version(name, version=version)

    def fill(folder: Path) -> list[str]:
        files = sorted(svc.backend.download_model(name, chosen.version, folder))
        metadata = build_metadata(chosen, backend=svc.backend.name, files=files)
        (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
        return [*files, "metadata.json"]

    return archives.send(svc.settings.home, fill, prefix="aml-archive-", filename=f"{name}-{version}.tar.gz")


@router.get(
    "/models/{name}/versions/{version}/archive",
    summary="A version's files and metadata.json as tar.gz",
    response_class=StreamingResponse,
    responses=errors(404, ok=ARCHIVE),
)
async def download_archive(svc: Svc, name: str, version: Version) -> StreamingResponse:
    return await svc.calls(_send_archive, svc, name, version)
