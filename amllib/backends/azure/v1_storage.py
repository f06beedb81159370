"""The azureml backend's datastore: uploads under a prefix of their own, the version record, leases.

upload(overwrite=True) never deletes what an older upload left, so writing the same path again
would mix old files with new: each upload gets a new prefix (common.new_data_prefix), checked
blob by blob, and then `.aml-data-versions/<path>.json` beside (not inside) the data names it as
the path's current version. Runs hold leases on the prefix they read (data_versions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amllib.backends.azure.common import check_arrived, checked_source, new_data_prefix
from amllib.backends.azure.data_versions import DataLeases
from amllib.backends.base import DataVersion, Progress
from amllib.errors import NotFound, quoted
from amllib.files import list_files
from amllib.paths import safe_relpath

VERSIONS_FOLDER = ".aml-data-versions"


def _version_blob(target: str) -> str:
    return f"{VERSIONS_FOLDER}/{target}.json"


def _data_version(record: dict[str, Any]) -> DataVersion:
    return DataVersion(path=record["path"], digest=record["digest"], files=record["files"], bytes=record["bytes"])


class V1Storage(DataLeases):
    """The default datastore of the v1 workspace (workspace comes with the backend)."""

    workspace: Any

    def _datastore(self) -> Any:
        return self._call("getting the default datastore", self.workspace.get_default_datastore)

    def upload_data(self, src_dir: Path, *, target_path: str, progress: Progress | None = None) -> DataVersion:
        """Upload under a prefix of its own, check every blob, then record it as the path's current version.

        upload(overwrite=True) never deletes what an older upload left, so writing the same path
        again would mix old files with new: each upload gets a new prefix instead (common.new_data_prefix).
        """
        target, summary = checked_source(src_dir, target_path)
        datastore = self._datastore()
        prefix = new_data_prefix(target)
        self._call(
            f"uploading to {quoted(target)}",
            datastore.upload,
            src_dir=str(src_dir),
            target_path=prefix,
            overwrite=False,
            show_progress=False,
        )
        check_arrived(prefix, list_files(src_dir), self._blob_sizes(datastore, prefix + "/"))
        if progress is not None:  # the SDK uploads the folder in one call: the whole of it, at its end
            progress(summary.bytes, summary.files)
        data = DataVersion(path=target, digest=summary.digest, files=summary.files, bytes=summary.bytes)
        record = datastore.blob_service.get_blob_client(datastore.container_name, _version_blob(target))
        body = json.dumps({**data.__dict__, "prefix": prefix})
        self._call("recording the data version", record.upload_blob, body, overwrite=True)
        return data

    def _record(self, datastore: Any, target: str) -> dict[str, Any] | None:
        """The version record the last upload left beside (not inside) the data, if any."""
        record = datastore.blob_service.get_blob_client(datastore.container_name, _version_blob(target))
        try:
            return json.loads(
                self._call(f"reading the data version of {quoted(target)}", record.download_blob).readall()
            )
        except NotFound:
            return None

    def current_data(self, target_path: str) -> DataVersion | None:
        record = self._record(self._datastore(), str(safe_relpath(target_path, what="data path")))
        return None if record is None else _data_version(record)

    def list_data(self) -> list[DataVersion]:
        return [_data_version(record) for record in self._records()]

    def _records(self) -> list[dict[str, Any]]:
        """The version records uploads left under .aml-data-versions/, one per datastore path."""
        datastore, found = self._datastore(), []
        for name in sorted(self._blob_sizes(datastore, VERSIONS_FOLDER + "/")):
            record = self._record(datastore, name.removeprefix(VERSIONS_FOLDER + "/").removesuffix(".json"))
            if record is not None:
                found.append(record)
        return found

    def _blob_sizes(self, datastore: Any, prefix: str) -> dict[str, int]:
        container = datastore.blob_service.get_container_client(datastore.container_name)
        return self._call(
            f"listing {quoted(prefix)}", lambda: {b.name: b.size for b in container.list_blobs(name_starts_with=prefix)}
        )

    # -- leases (data_versions) --------------------------------------------------
    def _data_container(self) -> Any:
        datastore = self._datastore()
        return datastore.blob_service.get_container_client(datastore.container_name)

    def _data_paths(self) -> list[tuple[str, str | None]]:
        return [(record["path"], record.get("prefix")) for record in self._records()]
