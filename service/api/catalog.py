"""What a run can be made of: the training scripts and the datastore's paths (the Train form's lists)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from amllib import data_profile
from amllib.digest import file_sha256
from amllib.errors import DataNotFound, quoted
from amllib.script_args import script_arguments
from amllib.times import iso
from service.core.worker import PROFILES
from service.http.answers import DataHistory, DataProfile, Datastore, Scripts
from service.http.deps import Svc
from service.http.openapi import errors, ok

router = APIRouter(tags=["catalog"])


@router.get(
    "/scripts", response_model=None, summary="The training scripts a run may name", responses=errors(ok=ok(Scripts))
)
async def list_scripts(svc: Svc) -> dict:
    """Each .py directly in AZML_TRAINING_DIR, with the digest a run of it records as script_digest and the
    arguments it takes (read from its argparse calls, never run); and what a run gets when it names none."""

    def scan() -> list[dict]:
        folder = svc.settings.training_dir
        found = []
        for path in sorted(folder.glob("*.py")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith((".", "_")):
                arguments, why = script_arguments(path)
                found.append(
                    {
                        "name": path.name,
                        "bytes": path.stat().st_size,
                        "digest": "sha256:" + file_sha256(path),
                        "arguments": arguments,
                        "arguments_error": why,
                    }
                )
        return found

    settings = svc.settings
    defaults = {
        "script": settings.script,
        "experiment": settings.experiment,
        "datapath": settings.datapath,
        "model": settings.model,
        "compute": settings.compute_name,
    }
    return {"scripts": await svc.calls(scan), "defaults": defaults, "backend": svc.backend.name}


@router.get(
    "/datastore",
    response_model=None,
    summary="The datastore's paths with the data version now at each",
    responses=errors(ok=ok(Datastore)),
)
async def list_datastore(svc: Svc) -> dict:
    data = await svc.calls(svc.backend.list_data)
    return {"paths": [d.__dict__ for d in data]}


HISTORY = 100


@router.get(
    "/datastore/history",
    response_model=None,
    summary="Every version of a data path: when, by whom, how big, and the runs that read it",
    responses=errors(404, ok=ok(DataHistory)),
)
async def data_history(svc: Svc, path: Annotated[str, Query(min_length=1, max_length=1024)]) -> dict:
    """The versions uploaded through the service (newest first, at most 100) and the path's current version
    (uploaded by a script, perhaps), each with how many runs read it and the newest few of them."""
    uploads = await svc.store.read(svc.store.jobs_where, "data", "path", path, limit=HISTORY)
    current = await svc.calls(svc.backend.current_data, path)
    versions: list[dict] = []
    seen: set[str] = set()
    for job in uploads:
        digest = job.result.get("digest")
        if job.status != "Completed" or not digest or digest in seen:
            continue
        seen.add(digest)
        versions.append(
            {
                "digest": digest,
                "files": job.result.get("files"),
                "bytes": job.result.get("bytes"),
                "uploaded_at": iso(job.finished_at),
                "uploaded_by": job.spec.get("created_by"),
                "upload": job.id,
            }
        )
    if current is not None and current.digest not in seen:
        versions.insert(0, {"digest": current.digest, "files": current.files, "bytes": current.bytes})
    if not versions:
        raise DataNotFound(f"no data at datastore path {quoted(path)}")
    for version in versions:
        version.setdefault("uploaded_at", None)
        version.setdefault("uploaded_by", None)
        version.setdefault("upload", None)
        version["current"] = current is not None and version["digest"] == current.digest
        version["runs"] = await svc.store.read(svc.store.runs_reading, version["digest"])
        newest = await svc.store.read(svc.store.page, "run", data_version=version["digest"], limit=5)
        version["newest_runs"] = [job.id for job in newest]
        version["profiled"] = data_profile.exists(svc.settings.home / PROFILES, version["digest"])  # not read
    return {"path": path, "versions": versions}


@router.get(
    "/datastore/profile",
    response_model=None,
    summary="A data version's first rows and the profile of each column (versions uploaded through the service)",
    responses=errors(404, ok=ok(DataProfile)),
)
async def data_version_profile(
    svc: Svc, version: Annotated[str, Query(min_length=8, max_length=80, description="the data version (sha256:…)")]
) -> dict:
    found = await svc.calls(data_profile.load, svc.settings.home / PROFILES, version)
    if found is None:
        raise DataNotFound(
            f"no profile of data version {quoted(version)}: versions uploaded through the service (POST /data) are"
            " profiled when they arrive; the scripts' uploads are not"
        )
    return {"version": version, **found}
