"""A blob container on a folder for both Azure fakes: the ContainerClient calls the backends make, as Azure answers.

As azure-storage-blob's ContainerClient: upload_blob refuses an existing blob unless overwrite=True
(ResourceExistsError), download_blob and delete_blob of a missing blob raise ResourceNotFoundError,
walk_blobs with a delimiter yields the "folders" right under the prefix as BlobPrefix items whose
names end with the delimiter, then the blobs at that level.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import StorageStreamDownloader

from amllib.files import list_files


def blobs_in(folder: Path, prefix: str | None) -> list[SimpleNamespace]:
    files = list_files(folder) if folder.is_dir() else []
    return [SimpleNamespace(name=rel, size=full.stat().st_size) for rel, full in files if rel.startswith(prefix or "")]


def downloader(body: bytes) -> Any:
    """An autospec of the SDK's StorageStreamDownloader over `body`: readall, readinto (returns the count)."""
    stream = create_autospec(StorageStreamDownloader, instance=True)
    stream.readall.side_effect = lambda: body
    stream.readinto.side_effect = lambda handle: handle.write(body)
    return stream


# A container's ETags and its write lock (Azure checks a condition and writes in one step), shared by
# every client made on the same folder, as every client of one Azure container sees the same blobs.
_STATE: dict[Path, tuple[dict[str, str], threading.Lock]] = {}


def on_folder(client: Any, folder: Path) -> Any:
    """Give an autospec ContainerClient the blob calls, kept in `folder`. Every write gives the blob a new ETag;
    a write with etag + MatchConditions.IfNotModified that no longer matches is refused with 412, as Azure does."""
    etags, one_at_a_time = _STATE.setdefault(folder, ({}, threading.Lock()))  # one container: one state

    def upload_blob(name: str, data: Any, blob_type: Any = None, length: Any = None, **kw: Any) -> Any:
        with one_at_a_time:
            return _upload(name, data, **kw)

    def _upload(name: str, data: Any, **kw: Any) -> Any:
        target = folder / name
        if target.exists() and not kw.get("overwrite"):
            raise ResourceExistsError(message=f"The specified blob already exists: {name}")
        if kw.get("match_condition") == MatchConditions.IfNotModified and etags.get(name) != kw.get("etag"):
            raise ResourceModifiedError(message="The condition specified using HTTP conditional header(s) is not met.")
        target.parent.mkdir(parents=True, exist_ok=True)
        body = data.read() if hasattr(data, "read") else data
        target.write_bytes(body.encode() if isinstance(body, str) else body)
        etags[name] = f'"0x{uuid.uuid4().hex[:16].upper()}"'
        return {"etag": etags[name]}

    def download_blob(blob: str, offset: Any = None, length: Any = None, **kw: Any) -> Any:
        path = folder / blob
        with one_at_a_time:  # a blob's content and its ETag are of one version, never a write half-done
            if not path.is_file():
                raise ResourceNotFoundError(message=f"The specified blob does not exist: {blob}")
            content = path.read_bytes()
            etag = etags.setdefault(blob, f'"0x{uuid.uuid4().hex[:16].upper()}"')
        stream = downloader(content[offset or 0 :])
        stream.properties = SimpleNamespace(etag=etag)
        return stream

    def delete_blob(blob: str, delete_snapshots: Any = None, **kw: Any) -> None:
        path = folder / blob
        if not path.is_file():
            raise ResourceNotFoundError(message=f"The specified blob does not exist: {blob}")
        path.unlink()
        for parent in path.parents:  # blob storage has no folders: one with no blob left is gone
            if parent == folder or any(parent.iterdir()):
                break
            parent.rmdir()

    def walk_blobs(name_starts_with: str | None = None, include: Any = None, delimiter: str = "/", **kw: Any) -> list:
        prefix, seen, found = name_starts_with or "", set(), []
        for blob in blobs_in(folder, prefix):
            rest = blob.name[len(prefix) :]
            if delimiter in rest:
                sub = prefix + rest.split(delimiter, 1)[0] + delimiter
                if sub not in seen:
                    seen.add(sub)
                    found.append(SimpleNamespace(name=sub, prefix=sub))
            else:
                found.append(blob)
        return found

    client.upload_blob.side_effect = upload_blob
    client.download_blob.side_effect = download_blob
    client.delete_blob.side_effect = delete_blob
    client.walk_blobs.side_effect = walk_blobs
    client.list_blobs.side_effect = lambda name_starts_with=None, include=None, **kw: blobs_in(folder, name_starts_with)
    return client
