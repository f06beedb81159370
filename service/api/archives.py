"""A folder of downloaded files as a tar.gz answer, removed once sent (model versions, run outputs)."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask


def build(fill: Callable[[Path], list[str]], *, prefix: str) -> Path:
    """fill(folder) writes files into an empty folder and names them; they are packed, in that order, into
    an archive in a temp folder of its own (the caller sends it with `send`, which removes it)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (work / "files").mkdir()
        files = fill(work / "files")
        archive = work / "files.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            for rel in files:
                tar.add(work / "files" / rel, arcname=rel)
        return archive
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def send(archive: Path, filename: str) -> FileResponse:
    return FileResponse(
        archive,
        media_type="application/gzip",
        filename=filename,
        background=BackgroundTask(shutil.rmtree, archive.parent, ignore_errors=True),
    )
