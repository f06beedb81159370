"""The azureml backend's model registry: the workspace's models, registered from a run's outputs/ once."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from amllib.backends.azure.common import DATA_TAG, SCRIPT_TAG, AzureBackend
from amllib.backends.azure.v1_sdk import Sdk
from amllib.backends.base import ModelVersion, epoch_seconds, numeric_accuracy, tag_number
from amllib.errors import BackendUnavailable, InvalidInput, ModelNotFound, NotFound, quoted
from amllib.files import move_files
from amllib.names import check_name


class V1Registry(AzureBackend):
    """Model versions of the v1 backend (workspace, sdk, _run and get_run come with it)."""

    sdk: Sdk
    workspace: Any

    def _run(self, run_id: str) -> Any:
        raise NotImplementedError

    def register_model(self, *, run_id: str, model_name: str, tags: dict[str, Any]) -> ModelVersion:
        """Registers a run once: a version already made from this run is returned, not made again."""
        check_name(model_name, what="model name")
        made = self._call(
            f"listing versions of {model_name}", self.sdk.Model.list, self.workspace, name=model_name, run_id=run_id
        )
        if made:
            return self._version(min(made, key=lambda m: int(m.version)))
        if not self.list_run_outputs(run_id):
            raise InvalidInput(f"run {run_id} produced no files in outputs/; nothing to register")
        info = self.get_run(run_id)
        properties = {DATA_TAG: info.data_version or "", SCRIPT_TAG: info.script_digest or ""}
        model = self._call(
            f"registering {model_name}",
            self._run(run_id).register_model,
            model_name=model_name,
            model_path="outputs/",
            tags=tags,
            properties=properties,
        )
        return self._version(model)

    def _version(self, model: Any) -> ModelVersion:
        tags = numeric_accuracy(model.tags)
        return ModelVersion(
            name=model.name,
            version=int(model.version),
            tags=tags,
            run_id=model.run_id,
            created_at=epoch_seconds(model.created_time) or 0.0,
            data_version=(model.properties or {}).get(DATA_TAG) or None,
            script_digest=(model.properties or {}).get(SCRIPT_TAG) or None,
            description=getattr(model, "description", None) or None,
        )

    def update_version(
        self, name: str, version: int, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> ModelVersion:
        """Model.update, an in-place PATCH (azureml-core sends only what is given, and no empty tag set)."""
        try:
            model = self._call(f"reading {name}:{version}", self.sdk.Model, self.workspace, name=name, version=version)
        except NotFound as exc:
            raise ModelNotFound(f"model {quoted(name)} version {version} not found") from exc
        text_tags = None if tags is None else {key: str(value) for key, value in tags.items()}
        self._call(f"updating {name}:{version}", model.update, tags=text_tags, description=description)
        return self._version(model)

    def list_models(self) -> list[str]:
        return sorted({m.name for m in self._call("listing models", self.sdk.Model.list, self.workspace)})

    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        models = self._call(f"listing models of {run_id}", self.sdk.Model.list, self.workspace, run_id=run_id)
        return sorted((self._version(m) for m in models), key=lambda v: (v.name, v.version))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        models = self._call(f"listing versions of {name}", self.sdk.Model.list, self.workspace, name=name)
        return sorted((self._version(m) for m in models), key=lambda v: v.version)

    def resolve_version(
        self, name: str, *, version: int | None = None, best_by: str | None = None, alias: str | None = None
    ) -> ModelVersion:
        """Best by a tag looks only at the versions Azure returns for that tag, as the seed did (archived ones
        left out)."""
        if best_by and version is None and alias is None:
            archived = set(self.read_aliases(name).archived)
            tagged = self._call(
                f"listing versions of {name}", self.sdk.Model.list, self.workspace, name=name, tags=[best_by]
            )
            scored = [(tag_number((m.tags or {}).get(best_by)), int(m.version), m) for m in tagged]
            scored = [s for s in scored if s[0] is not None and s[1] not in archived]
            if scored:
                return self._version(max(scored, key=lambda s: (s[0], s[1]))[2])
            best_by = None
        return super().resolve_version(name, version=version, best_by=best_by, alias=alias)

    def download_model(self, name: str, version: int, dest: Path) -> list[str]:
        """Download the version, then keep only what is under outputs/, moved into dest."""
        try:
            model = self._call(f"reading {name}:{version}", self.sdk.Model, self.workspace, name=name, version=version)
        except NotFound as exc:
            raise ModelNotFound(f"model {quoted(name)} version {version} not found") from exc
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as folder:
            self._call(f"downloading {name}:{version}", model.download, target_dir=folder, exist_ok=True)
            outputs = next((p for p in Path(folder).rglob("outputs") if p.is_dir()), None)
            if outputs is None:
                raise BackendUnavailable(f"model {name}:{version} has no outputs/ folder")
            return move_files(outputs, dest)
