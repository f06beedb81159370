"""The azureml-v2 backend's model registry: `custom_model` versions pointing at a job's outputs/.

Registration is once per run and never collides: each version is numbered here, one registration
per model at a time in this process, and a 409 from another process retries with the next number.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from amllib.backends.azure.common import DATA_TAG, SCRIPT_TAG, AzureBackend
from amllib.backends.base import AliasBook, ModelVersion, RunInfo, RunStatus, epoch_seconds, numeric_accuracy
from amllib.errors import BackendUnavailable, Conflict, InvalidInput, ModelNotFound, NotFound, quoted
from amllib.files import move_files
from amllib.names import check_name

REGISTER_ATTEMPTS = 5
STAGES = {"production": "Production", "staging": "Staging"}  # the aliases Azure's `stage` mirrors
DEFAULT_STAGE = "Development"  # the stage Azure gives a new version


class V2Registry(AzureBackend):
    """Model versions of the v2 backend (client, get_run and list_run_outputs come with it)."""

    client: Any
    _register_locks: dict[str, threading.Lock]
    _locks_guard: threading.Lock

    def _model_versions(self, name: str, *, view: str = "all") -> list[Any]:
        """Every version (view "all": archived in Azure too, whose book says what archived means here), or
        only those Azure holds archived ("archived")."""
        from azure.ai.ml.constants import ListViewType

        kind = ListViewType.ALL if view == "all" else ListViewType.ARCHIVED_ONLY
        try:
            return self._call(
                f"listing versions of {name}", lambda: list(self.client.models.list(name=name, list_view_type=kind))
            )
        except NotFound:
            return []

    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> ModelVersion:
        """A run is registered once (a version already made from it is returned), and versions never collide.

        Without a version, models.create_or_update picks the next number client-side (container.next_version),
        so two registrations at once could take the same one. Here each names its version explicitly, one
        registration per model at a time in this process, and a 409 (another process took it) retries with
        the next number.
        """
        check_name(model_name, what="model name")
        with self._register_lock(model_name):
            made = [m for m in self._model_versions(model_name) if (m.properties or {}).get("run_id") == run_id]
            if made:
                return self._version(min(made, key=lambda m: int(m.version)))
            info = self.get_run(run_id)
            if info.status != RunStatus.COMPLETED or not self.list_run_outputs(run_id):
                raise InvalidInput(f"run {run_id} produced no files in outputs/; nothing to register")
            for _ in range(REGISTER_ATTEMPTS):
                version = 1 + max((int(m.version) for m in self._model_versions(model_name)), default=0)
                try:
                    created = self._call(
                        f"registering {model_name}",
                        self.client.models.create_or_update,
                        self._model(run_id, model_name, tags, info, version),
                    )
                except Conflict:
                    continue  # another registration took that number first
                return self._version(created)
        raise BackendUnavailable(
            f"registering {model_name}: version numbers kept colliding ({REGISTER_ATTEMPTS} tries)"
        )

    def _register_lock(self, model_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._register_locks.setdefault(model_name, threading.Lock())

    @staticmethod
    def _model(run_id: str, model_name: str, tags: dict[str, Any], info: RunInfo, version: int) -> Any:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        return Model(
            name=model_name,
            version=str(version),
            path=f"azureml://jobs/{run_id}/outputs/artifacts/paths/outputs/",
            type=AssetTypes.CUSTOM_MODEL,
            tags={key: str(value) for key, value in tags.items()},
            properties={"run_id": run_id, DATA_TAG: info.data_version or "", SCRIPT_TAG: info.script_digest or ""},
        )

    @staticmethod
    def _version(model: Any) -> ModelVersion:
        tags = numeric_accuracy(model.tags)
        properties = model.properties or {}
        return ModelVersion(
            name=model.name,
            version=int(model.version),
            tags=tags,
            run_id=properties.get("run_id") or None,
            created_at=epoch_seconds(getattr(model.creation_context, "created_at", None)) or 0.0,
            data_version=properties.get(DATA_TAG) or None,
            script_digest=properties.get(SCRIPT_TAG) or None,
            description=getattr(model, "description", None) or None,
        )

    def update_version(
        self, name: str, version: int, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> ModelVersion:
        """models.create_or_update of the version as it is, its path unchanged (Azure updates it in place)."""
        try:
            model = self._call(f"reading {name}:{version}", self.client.models.get, name, str(version))
        except NotFound as exc:
            raise ModelNotFound(f"model {quoted(name)} version {version} not found") from exc
        if description is not None:
            model.description = description
        if tags is not None:
            model.tags = {key: str(value) for key, value in tags.items()}  # Azure keeps tags as strings
        updated = self._version(self._call(f"updating {name}:{version}", self.client.models.create_or_update, model))
        # the SDK writes a version back as not archived: an archived one is archived again
        self.mirror_aliases(name, self.read_aliases(name), {version})
        return updated

    def mirror_aliases(self, name: str, book: AliasBook, versions: set[int]) -> None:
        """Azure's own marks follow the book: `stage` Production/Staging for the holders of those aliases
        (Development once a version holds neither), and models.archive/restore for archived versions.

        models.create_or_update writes a version back as not archived (the SDK's Model._to_rest_object),
        so the stage is set first and the archive after.
        """
        held: dict[int, str] = {}
        for alias in reversed(STAGES):  # production wins over staging for a version holding both
            if alias in book.aliases:
                held[int(book.aliases[alias]["version"])] = alias
        natively_archived = {int(m.version) for m in self._model_versions(name, view="archived")}
        for version in sorted(versions):
            try:
                model = self._call(f"reading {name}:{version}", self.client.models.get, name, str(version))
            except NotFound:
                continue  # gone from the registry: nothing of it to mark
            restored = False
            stage = STAGES[held[version]] if version in held else None
            if stage is None and model.stage in STAGES.values():
                stage = DEFAULT_STAGE  # it held production or staging and holds neither now
            if stage is not None and model.stage != stage:
                model.stage = stage
                self._call(f"staging {name}:{version}", self.client.models.create_or_update, model)
                restored = True
            archived = version in book.archived
            if archived and (restored or version not in natively_archived):
                self._call(f"archiving {name}:{version}", self.client.models.archive, name, str(version))
            elif not archived and version in natively_archived and not restored:
                self._call(f"restoring {name}:{version}", self.client.models.restore, name, str(version))

    def list_models(self) -> list[str]:
        return sorted({m.name for m in self._call("listing models", lambda: list(self.client.models.list()))})

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        return sorted((self._version(m) for m in self._model_versions(name)), key=lambda v: v.version)

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        return [v for name in self.list_models() for v in self.list_model_versions(name) if v.run_id == run_id]

    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        """models.download, then the files under the model's outputs/ folder moved into dest."""
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as folder:
            try:
                self._call(
                    f"downloading {name}:{version}",
                    self.client.models.download,
                    name,
                    str(version),
                    download_path=folder,
                )
            except NotFound as exc:
                raise ModelNotFound(f"model {quoted(name)} version {version} not found") from exc
            root = Path(folder) / name
            outputs = next((p for p in sorted(root.rglob("outputs")) if p.is_dir()), root if root.is_dir() else None)
            if outputs is None:
                raise BackendUnavailable(f"model {name}:{version} downloaded no files")
            return move_files(outputs, dest)
