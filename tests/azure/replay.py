"""The real MLClient on a replayed wire: azure-core's own RequestsTransport over a session that answers
from recorded Azure ML REST bodies (tests/azure/recordings, see its README) instead of the network.

Only the socket is replaced: the SDK builds each request, azure-core's pipeline (policies, retries,
error mapping) and RequestsTransport run as they do against Azure, and the SDK parses the recorded
bodies into its real entities (a job comes back as a `Command`, a datastore's secret as a SAS).
The workspace is stateful only as far as the tests need: known jobs, models and computes by name.

Never kinder than Azure: a request no route answers fails the test (Unrecorded), never a quiet 404
the backend would read as "absent"; `faults` makes a route answer 429/503 with Retry-After first
(or for ever); the job list comes in pages (nextLink); a cancel is a 202 operation after which the
job is CancelRequested until it ends; a new cluster's operation is InProgress before it ends.
"""

from __future__ import annotations

import copy
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport

RECORDINGS = Path(__file__).resolve().parent / "recordings"
SUBSCRIPTION, GROUP, WORKSPACE = "00000000-0000-0000-0000-000000000", "00000", "00000"
ARM = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
    f"/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
)
Answer = tuple[int, Any]
REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    503: "Service Unavailable",
}
PAGE = 100  # jobs a list page holds (the service pages with nextLink and $skip)


class Unrecorded(AssertionError):
    """A request the replayed workspace has no answer for: the test is missing a recording, or the code sent
    something it should not."""


def recorded(name: str) -> Any:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def _arm_path(uri: str | None) -> str | None:
    """A model URI compared as ARM compares resource ids: the SDK writes `resourcegroups` where Azure
    answered `resourceGroups` (the datastore path after it keeps its case)."""
    return re.sub(r"/resourcegroups/", "/resourceGroups/", uri, flags=re.IGNORECASE) if uri else uri


def not_found(what: str) -> Answer:
    """The recorded 404 envelope (UserError with a detail), naming what is missing."""
    body = recorded("error_model_not_found")
    body["error"]["details"][0]["message"] = f"{what} not found."
    return 404, body


def no_artifacts() -> dict[str, Any]:
    """Azure's answer to a model registered from a job output with no files there. No recording of it was
    found; the envelope is the recorded one (error_model_not_found.json), the code and message are Azure's
    as users quote them: "(NoMatchingArtifactsFoundFromJob) No artifacts matching outputs found from Job"."""
    body = recorded("error_model_not_found")
    body["error"]["code"] = "UserError"
    body["error"]["message"] = "No artifacts matching outputs found from Job"
    detail = {"code": "NoMatchingArtifactsFoundFromJob", "message": body["error"]["message"], "details": []}
    body["error"]["details"] = [{**detail, "additionalInfo": []}]
    return body


class StaticCredential:
    """A credential that never signs in anywhere (the replayed service checks no token)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("replayed-token", int(time.time()) + 3600)


class Workspace:
    """What the replayed workspace holds: jobs (by name → status), model versions, computes."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.models: dict[str, list[dict[str, Any]]] = {}
        self.computes: set[str] = set()
        self.data: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.requests_bodies: dict[str, Any] = {}
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = [
            ("GET", re.compile(rf"{ARM}/jobs/([^/]+)"), self.get_job),
            ("GET", re.compile(rf"{ARM}/datastores"), self.list_datastores),
            ("GET", re.compile(rf"{ARM}/datastores/([^/]+)"), self.get_datastore),
            ("POST", re.compile(rf"{ARM}/datastores/([^/]+)/listSecrets"), self.list_secrets),
            ("GET", re.compile(rf"{ARM}/computes/([^/]+)"), self.get_compute),
            ("GET", re.compile(rf"{ARM}/models/([^/]+)/versions"), self.list_model_versions),
            ("PUT", re.compile(rf"{ARM}/models/([^/]+)/versions/([^/]+)"), self.put_model_version),
            ("GET", re.compile(rf"{ARM}/data/([^/]+)"), self.get_data_container),
            ("PUT", re.compile(rf"{ARM}/data/([^/]+)/versions/([^/]+)"), self.put_data_version),
            ("GET", re.compile(rf"{ARM}/data/([^/]+)/versions/([^/]+)"), self.get_data_version),
            ("GET", re.compile(rf"{ARM}/models/([^/]+)/versions/([^/]+)"), self.get_model_version),
            ("GET", re.compile(rf"{ARM}/codes/([^/]+)/versions"), self.list_code_versions),
            ("POST", re.compile(rf"{ARM}/codes/([^/]+)/versions/([^/]+)/startPendingUpload"), self.start_upload),
            ("PUT", re.compile(rf"{ARM}/codes/([^/]+)/versions/([^/]+)"), self.put_code_version),
            ("GET", re.compile(rf"{ARM}/codes/([^/]+)/versions/([^/]+)"), self.get_code_version),
            ("PUT", re.compile(rf"{ARM}/environments/([^/]+)/versions/([^/]+)"), self.put_environment_version),
            ("PUT", re.compile(rf"{ARM}/jobs/([^/]+)"), self.put_job),
        ]
        self.routes += [
            ("GET", re.compile(rf"{ARM}/jobs"), self.list_jobs),
            ("POST", re.compile(rf"{ARM}/jobs/([^/]+)/cancel"), self.cancel_job),
            ("PUT", re.compile(rf"{ARM}/computes/([^/]+)"), self.put_compute),
            (
                "GET",
                re.compile(
                    rf"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/westus/computeOperationsStatus/([^/]+)"
                ),
                self.compute_operation,
            ),
            ("GET", re.compile(ARM), self.get_workspace),
        ]
        self.upload_sas: str | None = None  # where startPendingUpload sends code blobs (a container SAS URL)
        self.codes: dict[str, dict[str, Any]] = {}
        self.job_outputs: set[str] = set()  # jobs whose outputs/ reached the artifact store
        # (method, path pattern) → [(status, headers), how many more times (None: always)], before the route's own
        self.faults: dict[tuple[str, str], list[Any]] = {}
        self.timeouts: list[Any] = []  # the (connect, read) timeout each request was sent with
        self.cancel_refusal: Answer | None = None  # what a cancel of an ended job is answered
        self.compute_outcome = "Succeeded"  # how a new cluster's operation ends
        self.compute_polls: dict[str, int] = {}
        # hosts other than ARM's (a suffix of the host → handler(method, host, path, headers, raw body)): scoring URIs
        self.hosts: dict[str, Callable[..., Answer]] = {}

    def add_job(
        self, name: str, *, status: str = "Preparing", tags: dict[str, str] | None = None, created: float | None = None
    ) -> None:
        body = copy.deepcopy(recorded("job_command_preparing"))
        body["id"] = body["id"].replace("test_756573810826", name)
        body["name"] = name
        body["properties"]["status"] = status
        body["properties"]["tags"] = dict(tags or {})
        when = time.time() if created is None else created
        body["systemData"]["createdAt"] = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1e6):06d}+00:00"
        )
        self.jobs[name] = body

    def add_model_version(self, name: str, version: int, *, tags: dict[str, str], properties: dict[str, str]) -> None:
        body = copy.deepcopy(recorded("model_version"))
        body["id"] = f"{ARM}/models/{name}/versions/{version}"
        body["name"] = str(version)
        body["properties"]["tags"] = dict(tags)
        body["properties"]["properties"] = dict(properties)
        self.models.setdefault(name, []).append(body)

    # -- routes ----------------------------------------------------------------------
    def get_job(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        return (200, self.jobs[name]) if name in self.jobs else not_found(f"Job {name}")

    def list_datastores(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        return 200, {"value": [recorded("datastore_workspaceblobstore")]}

    def get_datastore(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        found = copy.deepcopy(recorded("datastore_workspaceblobstore"))
        found["name"] = match.group(1)
        found["id"] = f"{ARM}/datastores/{match.group(1)}"
        return 200, found

    def list_secrets(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        return 200, recorded("datastore_list_secrets_sas")

    def get_compute(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.computes:
            return not_found(f"Compute {name}")
        found = copy.deepcopy(recorded("compute_amlcompute"))
        found["name"], found["id"] = name, f"{ARM}/computes/{name}"
        found["properties"]["provisioningState"] = "Succeeded"
        return 200, found

    def list_model_versions(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.models:
            return not_found(f"Model container with name: {name}")
        view = (query.get("listViewType") or ["ActiveOnly"])[0]  # Azure's default: archived versions left out
        stage = (query.get("stage") or [None])[0]
        chosen = [
            v
            for v in reversed(self.models[name])  # newest first, as $orderBy=createdtime desc
            if {"ActiveOnly": not v["properties"]["isArchived"], "ArchivedOnly": v["properties"]["isArchived"]}.get(
                view, True
            )
            and stage in (None, v["properties"].get("stage"))
        ]
        return 200, {"value": chosen}

    def put_model_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        props = body["properties"]
        taken = [v for v in self.models.get(name, []) if v["name"] == version]
        if taken:  # a PUT of a version that exists updates it; its path may not change (Azure's UserError)
            if _arm_path(taken[0]["properties"].get("modelUri")) != _arm_path(props.get("modelUri")):
                return 400, {"error": {"code": "UserError", "message": "Asset paths cannot be updated."}}
            kept = taken[0]["properties"]
            kept.update(tags=props.get("tags") or {}, description=props.get("description"))
            kept["isArchived"] = bool(props.get("isArchived"))
            if props.get("stage"):  # an archive/restore body leaves stage out (the SDK's _archive_restore_body)
                kept["stage"] = props["stage"]
            return 200, taken[0]
        job = re.fullmatch(r"azureml://jobs/([^/]+)/outputs/artifacts/paths/outputs/?", props.get("modelUri") or "")
        if job and job.group(1) not in self.job_outputs:
            return 400, no_artifacts()
        self.add_model_version(
            name, int(version), tags=props.get("tags") or {}, properties=props.get("properties") or {}
        )
        self.models[name][-1]["properties"]["modelUri"] = props.get("modelUri")
        return 201, self.models[name][-1]

    def get_data_container(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.data:
            return not_found(f"Data container {name}")
        found = copy.deepcopy(recorded("data_container"))
        found["name"], found["id"] = name, f"{ARM}/data/{name}"
        found["properties"]["latestVersion"] = self.data[name][-1]["name"]
        found["properties"]["nextVersion"] = str(len(self.data[name]) + 1)
        found["properties"]["dataType"] = "uri_folder"
        return 200, found

    def put_data_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        if any(v["name"] == version for v in self.data.get(name, [])):
            return 409, {"error": {"code": "UserError", "message": f"Data {name}:{version} already exists."}}
        made = copy.deepcopy(recorded("data_version"))
        made["id"], made["name"] = f"{ARM}/data/{name}/versions/{version}", version
        props = body["properties"]
        made["properties"].update(
            tags=props.get("tags") or {},
            dataType=props.get("dataType"),
            dataUri=props.get("dataUri"),
            description=props.get("description"),
        )
        self.data.setdefault(name, []).append(made)
        return 201, made

    def get_data_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        found = [v for v in self.data.get(name, []) if v["name"] == version]
        return (200, found[0]) if found else not_found(f"Data {name}:{version}")

    def get_model_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        found = [v for v in self.models.get(name, []) if v["name"] == version]
        return (200, found[0]) if found else not_found(f"Model {name}:{version}")

    def list_code_versions(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """By content hash (the SDK's check for an identical snapshot): none the first time."""
        wanted = (query.get("hash") or [""])[0]
        same = [c for c in self.codes.values() if c["properties"]["properties"].get("hash_sha256") == wanted]
        return 200, {"value": same}

    def start_upload(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """The recorded answer, its SAS and blob URIs pointed at the test's container (Azurite)."""
        assert body == {"pendingUploadType": "TemporaryBlobReference"}, body
        answer = copy.deepcopy(recorded("code_start_pending_upload"))
        if self.upload_sas:
            reference = answer["blobReferenceForConsumption"]
            reference["credential"]["sasUri"] = self.upload_sas
            reference["blobUri"] = self.upload_sas.split("?", 1)[0]
        return 200, answer

    def put_code_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        made = copy.deepcopy(recorded("code_version"))
        made["id"], made["name"] = f"{ARM}/codes/{name}/versions/{version}", version
        props = body["properties"]
        made["properties"].update(
            codeUri=props["codeUri"], properties=props.get("properties") or {}, isAnonymous=props.get("isAnonymous")
        )
        self.codes[made["id"]] = made
        return 201, made

    def get_code_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        found = self.codes.get(f"{ARM}/codes/{match.group(1)}/versions/{match.group(2)}")
        return (200, found) if found else not_found(f"Code {match.group(1)}:{match.group(2)}")

    def put_environment_version(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, version = match.group(1), match.group(2)
        made = copy.deepcopy(recorded("environment_version"))
        made["id"], made["name"] = f"{ARM}/environments/{name}/versions/{version}", version
        props = body["properties"]
        made["properties"].update(
            image=props.get("image"), condaFile=props.get("condaFile"), isAnonymous=props.get("isAnonymous")
        )
        return 201, made

    def put_job(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """A new command job, shaped as the recorded one; an unknown compute is the recorded 400."""
        name, props = match.group(1), body["properties"]
        compute = (props.get("computeId") or "").rsplit("/", 1)[-1]
        if compute not in self.computes:
            error = copy.deepcopy(recorded("error_unknown_compute"))
            error["error"]["message"] = f"Unknown compute target '{compute}'."
            return 400, error
        if name in self.jobs:  # templated: what Azure answers a PUT of a job name that exists is not recorded
            return 400, {"error": {"code": "UserError", "message": f"A job with the name {name} already exists."}}
        self.add_job(name, status="NotStarted", tags=props.get("tags") or {})
        made = self.jobs[name]["properties"]
        for key in ("displayName", "experimentName", "command", "computeId", "codeId", "environmentId", "inputs"):
            made[key] = props.get(key)
        made["properties"] = props.get("properties") or {}
        self.requests_bodies[name] = body
        return 201, self.jobs[name]

    def add_history(self, count: int, *, start: float, step: float = 60.0) -> list[str]:
        """count ended jobs created `step` seconds apart from `start` (epoch seconds), oldest first."""
        names = []
        for index in range(count):
            name = f"old-{index:06d}"
            self.add_job(name, status="Completed", created=start + index * step)
            names.append(name)
        return names

    def list_jobs(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """The jobs newest first, PAGE at a time; nextLink carries $skip (what the SDK follows)."""
        skip = int((query.get("$skip") or ["0"])[0])
        ordered = sorted(self.jobs.values(), key=lambda job: job["systemData"]["createdAt"], reverse=True)
        page = ordered[skip : skip + PAGE]
        answer: dict[str, Any] = {"value": page}
        if skip + PAGE < len(ordered):
            answer["nextLink"] = (
                f"https://management.azure.com{ARM}/jobs?api-version=2024-01-01-preview&$skip={skip + PAGE}"
            )
        return 200, answer

    def cancel_job(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """202 with the operation's Location and Retry-After (the generated client's documented answer); the
        job is CancelRequested until it ends. A job that has ended gets `cancel_refusal`."""
        name = match.group(1)
        if name not in self.jobs:
            return not_found(f"Job {name}")
        status = self.jobs[name]["properties"]["status"]
        if status in ("Completed", "Failed", "Canceled"):
            return self.cancel_refusal or (400, {"error": {"code": "UserError", "message": f"Job {name} has ended."}})
        self.jobs[name]["properties"]["status"] = "CancelRequested"
        location = f"https://management.azure.com/operations/cancel/{name}"
        return 202, ({}, {"Location": location, "Retry-After": "30"})

    def put_compute(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """201 with Azure-AsyncOperation: the cluster is Creating until its operation ends."""
        name = match.group(1)
        found = copy.deepcopy(recorded("compute_amlcompute"))
        found["name"], found["id"] = name, f"{ARM}/computes/{name}"
        found["properties"]["provisioningState"] = "Creating"
        operation = (
            f"https://management.azure.com/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices"
            f"/locations/westus/computeOperationsStatus/{name}?api-version=2024-01-01-preview"
        )
        self.compute_polls[name] = 0
        return 201, (found, {"Azure-AsyncOperation": operation, "Retry-After": "0"})

    def get_workspace(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        return 200, recorded("workspace")

    def compute_operation(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        self.compute_polls[name] += 1
        if self.compute_polls[name] < 2:
            return 200, {"status": "InProgress"}
        if self.compute_outcome == "Succeeded":
            self.computes.add(name)
            return 200, {"status": "Succeeded"}
        error = {"code": "ResourceOperationFailure", "message": f"Compute {name} could not be created: quota."}
        return 200, {"status": "Failed", "error": error}

    # -- the wire ----------------------------------------------------------------------
    def fault(self, method: str, pattern: str, status: int, headers: dict[str, str], *, times: int | None) -> None:
        """Answer requests to that route with `status` and `headers` (`times` of them, or all while None)."""
        self.faults[(method, pattern)] = [(status, headers), times]

    def _fault(self, method: str, path: str) -> Answer | None:
        for (fault_method, pattern), held in self.faults.items():
            answer, times = held
            if fault_method == method and re.fullmatch(pattern, path) and (times is None or times > 0):
                if times is not None:
                    held[1] = times - 1
                return answer
        return None

    def answer(
        self, method: str, url: str, data: Any, timeout: Any = None, sent: dict[str, str] | None = None
    ) -> requests.Response:
        parts = urlsplit(url)
        self.requests.append((method, parts.path))
        self.timeouts.append(timeout)
        headers: dict[str, str] = {}
        fault = self._fault(method, parts.path)
        host = next((h for suffix, h in self.hosts.items() if (parts.hostname or "").endswith(suffix)), None)
        if fault is None and host is not None:
            status, payload = host(method, parts.hostname, parts.path, dict(sent or {}), data)
        elif fault is not None:
            status, headers = fault
            payload: Any = {"error": {"code": "TooManyRequests", "message": f"answered {status} by the test"}}
        else:
            body = json.loads(data) if data else None
            for route_method, pattern, handler in self.routes:
                match = pattern.fullmatch(parts.path)
                if match and route_method == method:
                    status, payload = handler(match, parse_qs(parts.query), body)
                    break
            else:
                raise Unrecorded(f"no recording for {method} {parts.path}")
            if isinstance(payload, tuple):
                payload, headers = payload
        response = requests.Response()
        response.status_code = status
        response.reason = REASONS.get(status, "Error")
        response._content = b"" if payload is None else json.dumps(payload).encode()
        response.raw = io.BytesIO(response._content)
        response.headers["Content-Type"] = "application/json; charset=utf-8"
        response.headers.update(headers)
        response.url = url
        return response

    def transport(self) -> RequestsTransport:
        return RequestsTransport(session=_Session(self))


class _Session(requests.Session):
    """A requests session whose every request is answered by the replayed workspace, never the network."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self._workspace = workspace

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        return self._workspace.answer(method, url, kwargs.get("data"), kwargs.get("timeout"), kwargs.get("headers"))


def ml_client(workspace: Workspace) -> Any:
    """A real MLClient whose every service client sends through the replayed wire."""
    from azure.ai.ml import MLClient

    return MLClient(
        StaticCredential(),
        subscription_id=SUBSCRIPTION,
        resource_group_name=GROUP,
        workspace_name=WORKSPACE,
        transport=workspace.transport(),
        show_progress=False,
    )


def replayed_backend(settings: Any, workspace: Workspace, **kwargs: Any) -> Any:
    """The v2 backend building its own MLClient, as the app does, with its own options (no retries of the
    SDK's, timeouts), over the replayed wire; MLflow is an autospec client whose runs logged nothing (MLflow
    REST is not replayed: tests/azure/recordings/README.md)."""
    from unittest.mock import create_autospec

    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
    from mlflow.tracking import MlflowClient

    from amllib.backends.azure.v2 import AzureMLV2Backend

    mlflow = create_autospec(MlflowClient, instance=True)
    mlflow.get_run.side_effect = lambda run_id: (_ for _ in ()).throw(
        MlflowException(f"Run '{run_id}' not found", error_code=RESOURCE_DOES_NOT_EXIST)
    )
    options = {"credential": StaticCredential(), "session": _Session(workspace), "mlflow_client": mlflow}
    return AzureMLV2Backend(settings, **{"retry_delay": 0.0, **options, **kwargs})


def replay_settings(tmp_path: Any, **overrides: Any) -> Any:
    """Settings naming the replayed workspace (the recordings' sanitized ids)."""
    from tests.conftest import make_settings

    values = {"backend": "azureml-v2", "subid": SUBSCRIPTION, "resgrp": GROUP, "workspace": WORKSPACE}
    return make_settings(tmp_path / "aml", **{**values, **overrides})
