"""The azureml-v2 backend's storage: blobs in the workspace's datastores, Data assets, the artifact store.

Data is written with the storage client at AZML_DATAPATH under a prefix of its own for each upload
(the v2 Data upload would pick its own LocalUpload/<hash>/ path), checked blob by blob, and then
registered as a new version of a `uri_folder` Data asset naming that prefix, with the digest as a
tag. A job's log and outputs are read from the workspace's artifact store.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

from amllib.backends.azure.common import check_arrived, checked_source, new_data_prefix, tail_text
from amllib.backends.azure.data_versions import DataLeases
from amllib.backends.base import DataVersion, Progress, whole_lines
from amllib.errors import NotFound, quoted
from amllib.files import fetch_into, list_files
from amllib.paths import safe_relpath

ARTIFACT_STORE = "workspaceartifactstore"
LOG_NAMES = ("user_logs/std_log.txt", "user_logs/std_log_process_0.txt")  # a multi-process job: one per process
PATH_TAG = "azml_path"
CONTAINER_SECONDS = 600.0  # a datastore's container client (and the secret in it) is reused this long
# A file over 8 MiB goes up in 4 MiB blocks (the client's defaults: one PUT up to 64 MiB): progress moves as
# they go, and a failed try resends a block, not the whole file.
SINGLE_PUT_BYTES, BLOCK_BYTES = 8 * 1024 * 1024, 4 * 1024 * 1024
_ASSET_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def asset_name(path: str) -> str:
    """A Data asset name for a datastore path (names allow letters, digits, '-', '_', '.')."""
    cleaned = _ASSET_NAME.sub("-", path)
    return cleaned if cleaned == path else f"{cleaned}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


class V2Storage(DataLeases):
    """Datastore, Data assets and artifact-store reads of the v2 backend (client and settings come with it)."""

    client: Any
    credential: Any
    _account_url: Any
    _container_client: Any
    _containers: dict[str | None, tuple[Any, Any, float]]

    def client_options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _job(self, run_id: str) -> Any:
        raise NotImplementedError

    def _container(self, datastore_name: str | None = None) -> tuple[Any, Any]:
        """(datastore, a storage ContainerClient on it with the credentials the workspace holds for it).

        Kept for CONTAINER_SECONDS (a datastore read with its secrets is a GET and a listSecrets POST, an
        ARM write-quota call: a run page tailing a log would spend both every second), and dropped at
        once when a call meets 401/403 (a rotated key, an expired SAS)."""
        cached = self._containers.get(datastore_name)
        if cached is not None and time.monotonic() - cached[2] < CONTAINER_SECONDS:
            return cached[0], cached[1]
        from azure.storage.blob import ContainerClient

        make_client = self._container_client or ContainerClient
        datastores = self.client.datastores
        if datastore_name is None:
            datastore = self._call("getting the default datastore", datastores.get_default, include_secrets=True)
        else:
            datastore = self._call(
                f"getting datastore {datastore_name}", datastores.get, datastore_name, include_secrets=True
            )
        credentials = datastore.credentials
        secret = getattr(credentials, "account_key", None) or getattr(credentials, "sas_token", None)
        if secret is None:  # identity-based datastore: the caller's own identity needs Storage Blob Data roles
            secret = self.credential
        container = make_client(
            self._account_url(datastore),
            datastore.container_name,
            credential=secret,
            **self.client_options(),
            max_single_put_size=SINGLE_PUT_BYTES,
            max_block_size=BLOCK_BYTES,
        )
        self._containers[datastore_name] = (datastore, container, time.monotonic())
        return datastore, container

    def _on_refused(self) -> None:
        self._containers.clear()

    # -- datastore -------------------------------------------------------------
    def upload_data(self, src_dir: Path, *, target_path: str, progress: Progress | None = None) -> DataVersion:
        """Upload under a prefix of its own, check every blob, then register it as a new Data asset version.

        Each asset version names its own prefix, so version 1 keeps version 1's files for good and a
        run submitted while an upload is under way reads one whole version (common.new_data_prefix).
        """
        target, summary = checked_source(src_dir, target_path)
        datastore, container = self._container()
        prefix = new_data_prefix(target)
        files = list_files(src_dir)
        for rel, full in files:
            self._call(f"uploading {quoted(rel)}", _upload_file, container, f"{prefix}/{rel}", full, progress)
            if progress is not None:
                progress(0, 1)
        check_arrived(prefix, files, self._blobs(container, prefix + "/"))
        data = DataVersion(path=target, digest=summary.digest, files=summary.files, bytes=summary.bytes)
        self._register_data(datastore.name, data, prefix)
        return data

    def _blobs(self, container: Any, prefix: str) -> dict[str, int]:
        return self._call(
            f"listing {quoted(prefix)}", lambda: {b.name: b.size for b in container.list_blobs(name_starts_with=prefix)}
        )

    def _register_data(self, datastore_name: str, data: DataVersion, prefix: str) -> None:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        asset = Data(
            name=asset_name(data.path),
            path=f"azureml://datastores/{datastore_name}/paths/{prefix}/",
            type=AssetTypes.URI_FOLDER,
            description=f"uploaded by the AML control plane to {data.path}",
            tags={PATH_TAG: data.path, "digest": data.digest, "files": str(data.files), "bytes": str(data.bytes)},
        )
        self._call(f"registering data {quoted(data.path)}", self.client.data.create_or_update, asset)

    @staticmethod
    def _data_version(asset: Any) -> DataVersion | None:
        tags = asset.tags or {}
        if PATH_TAG not in tags:
            return None
        return DataVersion(
            path=tags[PATH_TAG],
            digest=tags.get("digest", ""),
            files=int(tags.get("files", 0)),
            bytes=int(tags.get("bytes", 0)),
        )

    def current_data(self, target_path: str) -> DataVersion | None:
        asset = self._latest_asset(asset_name(str(safe_relpath(target_path, what="data path"))))
        return self._data_version(asset) if asset is not None else None

    def list_data(self) -> list[DataVersion]:
        """The latest version of every Data asset this tool registered."""
        names = self._call("listing data assets", lambda: [asset.name for asset in self.client.data.list()])
        assets = [asset for asset in map(self._latest_asset, names) if asset is not None]
        found = [data for data in map(self._data_version, assets) if data is not None]
        return sorted(found, key=lambda data: data.path)

    def _latest_asset(self, name: str) -> Any:
        """The asset's latest version; None when there is none (the SDK says so with MlException, not a 404)."""
        try:
            return self._call(f"reading data {name}", self.client.data.get, name, label="latest")
        except NotFound:
            return None

    # -- leases (data_versions) --------------------------------------------------
    def _data_container(self) -> Any:
        return self._container()[1]

    def _data_paths(self) -> list[tuple[str, str | None]]:
        names = self._call("listing data assets", lambda: [asset.name for asset in self.client.data.list()])
        assets = [asset for asset in map(self._latest_asset, names) if asset is not None and self._data_version(asset)]
        return [(asset.tags[PATH_TAG], prefix_of(asset.path)) for asset in assets]

    def _forget_prefix(self, path: str, prefix: str) -> None:
        """Archive the Data asset versions naming it: a job that named one keeps its record, nobody picks it anew."""
        name = asset_name(path)
        versions = self._call(f"listing versions of data {name}", lambda: list(self.client.data.list(name=name)))
        for version in versions:
            if prefix_of(version.path) == prefix:
                self._call(f"archiving data {name}:{version.version}", self.client.data.archive, name, version.version)

    def _log_blob(self, run_id: str) -> Any:
        """std_log.txt, or a multi-process job's first process log when that is what it wrote."""
        _, container = self._container(ARTIFACT_STORE)
        folder = f"ExperimentRun/dcid.{run_id}/"
        present = self._blobs(container, folder + "user_logs/")
        name = next((folder + n for n in LOG_NAMES if folder + n in present), folder + LOG_NAMES[0])
        return container.get_blob_client(name)

    def read_log(self, run_id: str, offset: int) -> tuple[str, int]:
        self._job(run_id)
        blob = self._log_blob(run_id)
        try:
            chunk = self._call(f"reading the log of {run_id}", lambda: blob.download_blob(offset=offset).readall())
        except NotFound:
            return "", offset  # not written yet
        except Exception as exc:
            if getattr(exc, "status_code", None) == 416:  # nothing past offset: at the end, or past it
                size = self._call(f"reading the log of {run_id}", lambda: blob.get_blob_properties().size)
                return "", min(offset, size)
            raise
        return whole_lines(chunk, offset)

    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        self._job(run_id)
        blob = self._log_blob(run_id)
        try:
            text = self._call(f"reading the log of {run_id}", lambda: blob.download_blob().readall()).decode(
                errors="replace"
            )
        except NotFound:
            return ""
        return tail_text(text, tail)

    def list_run_outputs(self, run_id: str) -> list[str]:
        self._job(run_id)
        _, container = self._container(ARTIFACT_STORE)
        prefix = f"ExperimentRun/dcid.{run_id}/outputs/"
        return sorted(name.removeprefix(prefix) for name in self._blobs(container, prefix))

    def download_run_outputs(self, run_id: str, dest: Path) -> list[str]:
        """The blobs under the run's outputs/ in the artifact store, each streamed to its place in dest."""
        self._job(run_id)
        _, container = self._container(ARTIFACT_STORE)
        prefix = f"ExperimentRun/dcid.{run_id}/outputs/"
        blobs = {name.removeprefix(prefix): name for name in self._blobs(container, prefix)}

        def download(name: str, target: Path) -> None:
            self._call(f"downloading {quoted(name)}", _download_file, container, name, target)

        return fetch_into(dest, blobs, download)


def prefix_of(uri: str | None) -> str | None:
    """The datastore path of an azureml://[subscriptions/.../workspaces/<ws>/]datastores/<name>/paths/<path>/ URI
    (None for another form). Azure answers with the long form whichever one was registered (data_version.json)."""
    head, found, path = (uri or "").partition("/paths/")
    return path.rstrip("/") if found and head.startswith("azureml://") and "datastores/" in head else None


def _download_file(container: Any, name: str, path: Path) -> None:
    """One blob into one file, streamed, the file written anew on each try."""
    with path.open("wb") as handle:
        container.download_blob(name).readinto(handle)


def _upload_file(container: Any, name: str, path: Path, progress: Progress | None = None) -> None:
    """One blob from one file, the file opened anew for each try: a retry of a read-out handle would send 0 bytes.
    The storage client's progress hook tells `progress` the bytes as its blocks go (a retry's are not told twice)."""
    told = 0

    def hook(current: int, total: int | None) -> None:
        nonlocal told
        if progress is not None and current > told:
            progress(current - told, 0)
            told = current

    with path.open("rb") as handle:
        container.upload_blob(name, handle, overwrite=True, progress_hook=hook)


def _account_url(datastore: Any) -> str:
    """https://<account>.blob.<endpoint>, as the SDK builds it for a blob datastore."""
    endpoint = getattr(datastore, "endpoint", None) or "core.windows.net"
    protocol = getattr(datastore, "protocol", None) or "https"
    return f"{protocol}://{datastore.account_name}.blob.{endpoint}"
