"""The `azureml` backend: Azure ML SDK v1 (azureml-core), the seed's steps for real.

Datastore = the workspace's default blob datastore; compute = an AmlCompute
cluster (or this machine with AZML_RUN_LOCAL=true); registry = the workspace's
models. Every SDK call that can fail for a passing reason goes through
with_retry. azureml-core is imported only when this backend is built.

Proven here without Azure: every call is made against autospec'd fakes of the real
classes (tests/azure), the datastore upload and its verification against Azurite.
Not proven here: real authentication, cluster provisioning and runs on Azure
(tests/azure_live does that with AZML_LIVE=1 and a workspace).
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from amllib.backends.azure.alias_books import BlobAliasBooks
from amllib.backends.azure.auth import choose_auth, scrub
from amllib.backends.azure.common import (
    DATA_TAG,
    NOT_RESPONDING,
    SCALE_DOWN_SECONDS,
    SCRIPT_TAG,
    check_compute_name,
    datapath_of,
    map_status,
    tail_text,
    web_address,
)
from amllib.backends.azure.env import PYTHON_VERSION, TRAINING_PIP_PACKAGES
from amllib.backends.azure.v1_registry import V1Registry
from amllib.backends.azure.v1_sdk import Sdk, real_sdk
from amllib.backends.azure.v1_storage import V1Storage
from amllib.backends.base import (
    RunInfo,
    RunSpec,
    RunStatus,
    epoch_seconds,
    parse_script_arguments,
)
from amllib.errors import (
    BackendUnavailable,
    Conflict,
    DataNotFound,
    InvalidInput,
    NotFound,
    RunNotFound,
    quoted,
)
from amllib.files import fetch_into
from amllib.names import check_name
from amllib.paths import check_script, safe_relpath
from amllib.settings import Settings

MOUNT_POINT = "/tmp"
LOG_NAMES = ("user_logs/std_log.txt", "azureml-logs/70_driver_log.txt")
PROCESS_LOG = "user_logs/std_log_process_0.txt"  # a multi-process job writes one per process; the first is read


class AzureMLBackend(V1Registry, V1Storage, BlobAliasBooks):
    """Backend on an Azure ML workspace."""

    name = "azureml"
    retry_attempts = 1  # azureml-core's REST clients retry inside every call (retry.py)

    def __init__(
        self,
        settings: Settings,
        *,
        workspace: Any = None,
        sdk: Sdk | None = None,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__(settings, retry_delay=retry_delay)
        self.sdk = sdk or real_sdk()
        self._workspace = workspace

    @property
    def workspace(self) -> Any:
        """Workspace.get with the chosen credentials, once; failures name the workspace and method."""
        if self._workspace is None:
            self.settings.require("subid", "resgrp", "workspace")
            method, auth = choose_auth(self.settings)
            self.method = method
            try:
                self._workspace = self._call(
                    f"connecting to workspace {self.settings.workspace}",
                    self.sdk.Workspace.get,
                    name=self.settings.workspace,
                    subscription_id=self.settings.subid,
                    resource_group=self.settings.resgrp,
                    auth=auth,
                )
            except Exception as exc:
                raise BackendUnavailable(
                    f"could not connect to workspace {self.settings.workspace!r} (resource group "
                    f"{self.settings.resgrp!r}) with {method} auth: {scrub(str(exc))}"
                ) from exc
        return self._workspace

    # -- compute -------------------------------------------------------------
    def ensure_compute(self, name: str) -> str:
        """The seed's getComputeAML: reuse an AmlCompute of that name, or create it and wait."""
        if self.settings.run_local:
            return "local"
        check_compute_name(name)
        sdk = self.sdk
        try:
            target = sdk.ComputeTarget(workspace=self.workspace, name=name)
        except sdk.ComputeTargetException:
            config = sdk.AmlCompute.provisioning_configuration(
                vm_size=self.settings.compute_vmsize,
                min_nodes=self.settings.compute_min_nodes,
                max_nodes=self.settings.compute_max_nodes,
                idle_seconds_before_scaledown=SCALE_DOWN_SECONDS,
            )
            target = self._call(
                f"creating compute {quoted(name)}", sdk.ComputeTarget.create, self.workspace, name, config
            )
            try:
                target.wait_for_completion(show_output=False, timeout_in_minutes=self.compute_timeout_minutes)
            except Exception as exc:
                raise BackendUnavailable(
                    f"compute {quoted(name)} was not ready within {self.compute_timeout_minutes} minutes: "
                    + scrub(str(exc))
                ) from exc
            return name
        if not isinstance(target, sdk.AmlCompute):
            kind = getattr(target, "type", type(target).__name__)
            raise Conflict(f"compute target {quoted(name)} exists but is a {kind}, not an AmlCompute cluster")
        return name

    def run_configuration(self, spec: RunSpec, datastore_name: str, source: str | None = None) -> Any:
        """Data mounted (downloaded) at /tmp; Docker + pinned conda packages, or this interpreter locally."""
        sdk = self.sdk
        config = sdk.RunConfiguration()
        config.target = "local" if self.settings.run_local else spec.compute
        config.data_references = {
            datastore_name: sdk.DataReferenceConfiguration(
                datastore_name=datastore_name,
                mode="download",
                path_on_datastore=source or spec.datapath,
                path_on_compute=MOUNT_POINT,
                overwrite=True,
            )
        }
        if self.settings.run_local:
            config.environment.python.user_managed_dependencies = True
            config.environment.python.interpreter_path = sys.executable  # the virtualenv this runs in
        else:
            config.docker = sdk.DockerConfiguration(use_docker=True)
            config.environment.docker.base_image = self.settings.env_image
            config.environment.python.user_managed_dependencies = False
            config.environment.python.conda_dependencies = sdk.CondaDependencies.create(
                pip_packages=TRAINING_PIP_PACKAGES, python_version=PYTHON_VERSION
            )
        return config

    def submit_run(self, spec: RunSpec) -> str:
        check_name(spec.experiment, what="experiment")
        check_script(self.settings.training_dir, spec.script)
        datapath = str(safe_relpath(spec.datapath, what="datapath"))
        datastore = self._datastore()
        record = self._record(datastore, datapath)
        # This tool's upload: the version's own prefix, for good. Else the path as another tool left it.
        source = record.get("prefix") or datapath if record else datapath
        if record is None and not self._blob_sizes(datastore, datapath + "/"):
            raise DataNotFound(f"no data at datastore path {quoted(datapath)}; upload it first")
        tags = {**spec.tags, DATA_TAG: record["digest"] if record else "", SCRIPT_TAG: self.script_digest(spec)}
        experiment = self.sdk.Experiment(self.workspace, spec.experiment)
        config = self.sdk.ScriptRunConfig(
            source_directory=str(self.settings.training_dir),
            script=spec.script,
            arguments=spec.script_arguments(f"{MOUNT_POINT}/{source}"),
            run_config=self.run_configuration(spec, datastore.name, source),
        )
        prefix = record.get("prefix") if record else None
        lease = uuid.uuid4().hex  # the run id is Azure's to give: the lease names it once submitted
        if prefix:
            self._hold(self._data_container(), prefix, lease, None)
        run = self._call(f"submitting {spec.script}", experiment.submit, config, tags=tags)
        if prefix:
            self._hold(self._data_container(), prefix, lease, run.id)
        return run.id

    def _run(self, run_id: str) -> Any:
        """The SDK's Run; an auth failure or an outage says so (it used to read as 'run not found')."""
        try:
            return self._call(f"reading run {run_id}", self.workspace.get_run, run_id)
        except NotFound as exc:
            raise RunNotFound(f"run {quoted(run_id)} not found in workspace {self.settings.workspace!r}") from exc

    def find_runs(self, experiment: str, *, tag: str, value: str) -> list[str]:
        runs = self._call("listing runs", self.sdk.Experiment(self.workspace, experiment).get_runs, tags={tag: value})
        return sorted(r.id for r in runs)

    def list_runs(self, *, created_after: float = 0.0, limit: int = 500) -> list[RunInfo]:
        """Every experiment's runs newest first, until one started before created_after (queued ones count as new)."""
        found: list[RunInfo] = []
        for experiment in self._call("listing experiments", self.sdk.Experiment.list, self.workspace):
            runs = self._call(f"listing runs of {experiment.name}", experiment.get_runs)
            for run in itertools.islice(runs, limit):
                info = self._info(run)
                if info.started_at is not None and info.created_at <= created_after:
                    break
                found.append(info)
        return sorted(found, key=lambda info: info.created_at)[-limit:]

    def get_run(self, run_id: str) -> RunInfo:
        return self._info(self._run(run_id))

    def _info(self, run: Any) -> RunInfo:
        run_id = run.id
        raw_status = self._call(f"reading run {run_id}", run.get_status)
        status = map_status(raw_status)
        details = self._call(f"reading run {run_id}", run.get_details) or {}
        error = None
        if status == RunStatus.FAILED:
            inner = (details.get("error") or {}).get("error") or {}
            error = (
                NOT_RESPONDING
                if raw_status == "NotResponding"
                else inner.get("message") or "the run failed on Azure ML"
            )
        tags = dict(run.get_tags() or {})
        definition = details.get("runDefinition") or {}
        data_path, estimators, args = parse_script_arguments([str(a) for a in definition.get("arguments") or []])
        started = epoch_seconds(details.get("startTimeUtc"))
        return RunInfo(
            run_id=run_id,
            status=status,
            experiment=run.experiment.name,
            script=definition.get("script", ""),
            created_at=started or time.time(),  # v1 gives no submit time; a queued run counts as new
            started_at=started,
            finished_at=epoch_seconds(details.get("endTimeUtc")),
            error=error,
            data_version=tags.pop(DATA_TAG, None) or None,
            script_digest=tags.pop(SCRIPT_TAG, None) or None,
            tags=tags,
            datapath=datapath_of(data_path.removeprefix(MOUNT_POINT + "/")) if data_path else None,
            compute=definition.get("target"),
            estimators=estimators,
            args=args,
            studio_url=web_address(run.get_portal_url()),  # read from the run's details: no request
        )

    def get_metrics(self, run_id: str) -> dict[str, list[Any]]:
        """A metric logged once comes back as a value, logged again as a list: always a list here."""
        metrics = self._call(f"reading metrics of {run_id}", self._run(run_id).get_metrics) or {}
        return {name: list(value) if isinstance(value, list) else [value] for name, value in metrics.items()}

    def get_log(self, run_id: str, *, tail: int | None = None) -> str:
        run = self._run(run_id)
        with tempfile.TemporaryDirectory(prefix="aml-logs-") as folder:
            names = self._call(f"downloading logs of {run_id}", run.get_all_logs, destination=folder) or []
            found = [n for wanted in (*LOG_NAMES, PROCESS_LOG) for n in names if n.replace("\\", "/").endswith(wanted)]
            if not found:
                return ""
            text = Path(found[0]).read_text(errors="replace")
        return tail_text(text, tail)

    def cancel_run(self, run_id: str) -> None:
        run = self._run(run_id)
        if map_status(self._call(f"reading run {run_id}", run.get_status)).terminal:
            return
        try:
            self._call(f"canceling {run_id}", run.cancel)
        except (Conflict, InvalidInput):  # it ended between the read and the request: left alone
            if not map_status(self._call(f"reading run {run_id}", run.get_status)).terminal:
                raise

    def list_run_outputs(self, run_id: str) -> list[str]:
        names = self._call(f"listing files of {run_id}", self._run(run_id).get_file_names) or []
        return sorted(n.removeprefix("outputs/") for n in names if n.startswith("outputs/"))

    def download_run_outputs(self, run_id: str, dest: Path) -> list[str]:
        """One Run.download_file per file, each to a place checked to be inside dest."""
        run = self._run(run_id)
        names = self._call(f"listing files of {run_id}", run.get_file_names) or []
        outputs = {name.removeprefix("outputs/"): name for name in names if name.startswith("outputs/")}

        def download(name: str, target: Path) -> None:
            self._call(f"downloading {quoted(name)} of {run_id}", run.download_file, name, output_file_path=str(target))

        return fetch_into(dest, outputs, download)
