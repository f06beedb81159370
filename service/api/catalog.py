"""What a run can be made of: the training scripts and the datastore's paths (the Train form's lists)."""

from __future__ import annotations

from fastapi import APIRouter

from amllib.digest import file_sha256
from amllib.script_args import script_arguments
from service.http.answers import Datastore, Scripts
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
