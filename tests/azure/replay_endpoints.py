"""Managed online endpoints and deployments on the replayed workspace (tests/azure/replay.py).

Bodies come from recordings (tests/azure/recordings/README.md): an endpoint as its PUT answers
(`online_endpoint_creating.json`), an operation's status (`online_operation_status.json`), a
deployment as the SDK's own REST fixture has it (`online_deployment.json`). As on Azure, every PUT,
DELETE and key regeneration is an operation (201/202 with `Azure-AsyncOperation`) that is
`Creating` in its PUT answer and ends when first polled, or after `updating_polls` answers of
`Updating` (each with `Retry-After: 1`, which the recorded ones did not carry: the SDK would wait its
own 5-30 s between polls); a deployment whose `fail_deployments` entry is set
ends `Failed`. The scoring URI (`https://<endpoint>.westus.inference.ml.azure.com/score`) checks the
key and the `azureml-model-deployment` header as Azure's front end does, then hands the request to
`scorer` (the test runs the uploaded score.py there); a request without a deployment header goes by
the traffic map.
"""

from __future__ import annotations

import copy
import itertools
import re
import secrets
from collections.abc import Callable
from typing import Any

from tests.azure.replay import ARM, SUBSCRIPTION, Answer, Workspace, not_found, recorded

OPERATIONS = (
    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.MachineLearningServices/locations/westus/mfeOperationsStatus"
)
Scorer = Callable[[dict[str, Any], str], Any]  # (the deployment as stored, the request body) → run()'s answer


class OnlineServices:
    """The workspace's online endpoints, deployments, keys and operations, as routes of `workspace`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self.keys: dict[str, dict[str, str]] = {}
        self.operations: dict[str, dict[str, Any]] = {}  # id → {"polls", "then": callable, "fail": message}
        self.updating_polls = 0  # how many polls of an operation answer Updating before it ends
        self.fail_deployments: dict[str, str] = {}  # deployment name → why its operation fails
        self.logs: dict[tuple[str, str], str] = {}
        self.scorer: Scorer | None = None
        self.scored: list[tuple[str, str | None]] = []  # (endpoint, deployment header) of each scoring request
        self._ids = itertools.count(1)
        base = rf"{ARM}/onlineEndpoints"
        workspace.routes[:0] = [
            ("GET", re.compile(base), self.list_endpoints),
            ("GET", re.compile(rf"{base}/([^/]+)"), self.get_endpoint),
            ("PUT", re.compile(rf"{base}/([^/]+)"), self.put_endpoint),
            ("DELETE", re.compile(rf"{base}/([^/]+)"), self.delete_endpoint),
            ("POST", re.compile(rf"{base}/([^/]+)/listKeys"), self.list_keys),
            ("POST", re.compile(rf"{base}/([^/]+)/regenerateKeys"), self.regenerate_keys),
            ("GET", re.compile(rf"{base}/([^/]+)/deployments"), self.list_deployments),
            ("GET", re.compile(rf"{base}/([^/]+)/deployments/([^/]+)"), self.get_deployment),
            ("PUT", re.compile(rf"{base}/([^/]+)/deployments/([^/]+)"), self.put_deployment),
            ("DELETE", re.compile(rf"{base}/([^/]+)/deployments/([^/]+)"), self.delete_deployment),
            ("POST", re.compile(rf"{base}/([^/]+)/deployments/([^/]+)/getLogs"), self.get_logs),
            ("GET", re.compile(rf"{OPERATIONS}/([^/]+)"), self.operation),
        ]
        workspace.hosts[".inference.ml.azure.com"] = self.score

    # -- operations ----------------------------------------------------------------------
    def _operation(self, then: Callable[[], None], *, fail: str | None = None) -> dict[str, str]:
        key = f"oeidp:replay:{next(self._ids)}"
        self.operations[key] = {"polls": 0, "then": then, "fail": fail}
        url = f"https://management.azure.com{OPERATIONS}/{key}?api-version=2022-02-01-preview"
        return {"Azure-AsyncOperation": url, "Retry-After": "0"}

    def operation(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        key = match.group(1)
        held = self.operations.get(key)
        if held is None:
            return not_found(f"Operation {key}")
        status = copy.deepcopy(recorded("online_operation_status"))
        status["id"], status["name"] = f"{OPERATIONS}/{key}", key
        held["polls"] += 1
        now = {"Retry-After": "1"}  # azure-core reads "0" as "not said" and waits its own 5-30 s
        if held["polls"] <= self.updating_polls:
            status["status"] = "Updating"
            return 200, (status, now)
        if held["then"] is not None:
            held["then"]()
            held["then"] = None
        if held["fail"]:
            status["status"] = "Failed"
            status["error"] = {"code": "ResourceOperationFailure", "message": held["fail"]}
        return 200, (status, now)

    # -- endpoints -----------------------------------------------------------------------
    def list_endpoints(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        return 200, {"value": [copy.deepcopy(e) for _, e in sorted(self.endpoints.items())]}

    def get_endpoint(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        return (200, self.endpoints[name]) if name in self.endpoints else not_found(f"Endpoint {name}")

    def put_endpoint(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """201 while Creating (200 Updating for one that exists); its traffic may only name its deployments."""
        name = match.group(1)
        props = body["properties"]
        unknown = set(props.get("traffic") or {}) - set(self.deployments.get(name, {}))
        if unknown:
            error = recorded("error_model_not_found")
            error["error"]["code"] = "BadArgument"
            error["error"]["message"] = f"Traffic routes to deployments that do not exist: {sorted(unknown)}"
            error["error"]["details"] = []
            return 400, error
        existing = self.endpoints.get(name)
        made = copy.deepcopy(existing) if existing else copy.deepcopy(recorded("online_endpoint_creating"))
        made["id"], made["name"] = f"{ARM}/onlineEndpoints/{name}", name
        made["tags"] = dict(body.get("tags") or {})
        made["properties"].update(
            description=props.get("description"),
            authMode=props["authMode"],
            traffic=dict(props.get("traffic") or {}),
            provisioningState="Updating" if existing else "Creating",
        )
        self.endpoints[name] = made
        if name not in self.keys:
            self.keys[name] = {"primaryKey": secrets.token_urlsafe(24), "secondaryKey": secrets.token_urlsafe(24)}

        def ready() -> None:
            made["properties"]["provisioningState"] = "Succeeded"
            made["properties"]["scoringUri"] = f"https://{name}.westus.inference.ml.azure.com/score"
            made["properties"]["swaggerUri"] = f"https://{name}.westus.inference.ml.azure.com/swagger.json"

        return (200 if existing else 201), (made, self._operation(ready))

    def delete_endpoint(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.endpoints:
            return not_found(f"Endpoint {name}")
        self.endpoints[name]["properties"]["provisioningState"] = "Deleting"

        def gone() -> None:
            self.endpoints.pop(name, None)
            self.deployments.pop(name, None)

        headers = self._operation(gone)
        return 202, (None, {**headers, "Location": headers["Azure-AsyncOperation"]})

    def list_keys(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        return (200, dict(self.keys[name])) if name in self.endpoints else not_found(f"Endpoint {name}")

    def regenerate_keys(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.endpoints:
            return not_found(f"Endpoint {name}")
        field = {"primary": "primaryKey", "secondary": "secondaryKey"}[str(body["keyType"]).lower()]

        def regenerated() -> None:
            self.keys[name][field] = secrets.token_urlsafe(24)

        headers = self._operation(regenerated)
        return 202, (None, {**headers, "Location": headers["Azure-AsyncOperation"]})

    # -- deployments ---------------------------------------------------------------------
    def list_deployments(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name = match.group(1)
        if name not in self.endpoints:
            return not_found(f"Endpoint {name}")
        found = self.deployments.get(name, {})
        return 200, {"value": [copy.deepcopy(d) for _, d in sorted(found.items())]}

    def get_deployment(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, slot = match.group(1), match.group(2)
        found = self.deployments.get(name, {}).get(slot)
        return (200, found) if found else not_found(f"Deployment {name}/{slot}")

    def put_deployment(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        """Creating (or Updating) until its operation ends Succeeded, or Failed when fail_deployments names it."""
        name, slot = match.group(1), match.group(2)
        if name not in self.endpoints:
            return not_found(f"Endpoint {name}")
        existing = self.deployments.get(name, {}).get(slot)
        made = copy.deepcopy(recorded("online_deployment"))
        made["id"], made["name"] = f"{ARM}/onlineEndpoints/{name}/deployments/{slot}", slot
        made["tags"] = dict(body.get("tags") or {})
        made["sku"] = body.get("sku") or made["sku"]
        props = body["properties"]
        for key in ("description", "codeConfiguration", "environmentId", "instanceType", "model"):
            made["properties"][key] = props.get(key)
        made["properties"]["environmentVariables"] = dict(props.get("environmentVariables") or {})
        made["properties"]["provisioningState"] = "Updating" if existing else "Creating"
        self.deployments.setdefault(name, {})[slot] = made
        failing = self.fail_deployments.get(slot)

        def settled() -> None:
            made["properties"]["provisioningState"] = "Failed" if failing else "Succeeded"

        return (200 if existing else 201), (made, self._operation(settled, fail=failing))

    def delete_deployment(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, slot = match.group(1), match.group(2)
        if slot not in self.deployments.get(name, {}):
            return not_found(f"Deployment {name}/{slot}")
        if (self.endpoints[name]["properties"].get("traffic") or {}).get(slot):
            error = recorded("error_model_not_found")
            error["error"]["code"] = "BadArgument"
            error["error"]["message"] = f"Deployment {slot} takes traffic and cannot be deleted"
            error["error"]["details"] = []
            return 400, error

        def gone() -> None:
            self.deployments.get(name, {}).pop(slot, None)

        headers = self._operation(gone)
        return 202, (None, {**headers, "Location": headers["Azure-AsyncOperation"]})

    def get_logs(self, match: re.Match[str], query: dict, body: Any) -> Answer:
        name, slot = match.group(1), match.group(2)
        if slot not in self.deployments.get(name, {}):
            return not_found(f"Deployment {name}/{slot}")
        return 200, {"content": self.logs.get((name, slot), "")}

    # -- the scoring URI -----------------------------------------------------------------
    def score(self, method: str, host: str, path: str, headers: dict[str, str], data: Any) -> Answer:
        name = host.split(".", 1)[0]
        self.scored.append((name, headers.get("azureml-model-deployment")))
        endpoint = self.endpoints.get(name)
        if method != "POST" or path != "/score" or endpoint is None:
            return 404, {"message": f"no endpoint answers {method} {host}{path}"}
        given = headers.get("Authorization", "")
        if given not in {f"Bearer {key}" for key in self.keys[name].values()}:
            return 401, {"message": "Key based authentication is not permitted on this endpoint."}
        slot = headers.get("azureml-model-deployment")
        if slot is None:
            taking = [(share, s) for s, share in (endpoint["properties"].get("traffic") or {}).items() if share > 0]
            slot = max(taking)[1] if taking else None
        deployment = self.deployments.get(name, {}).get(slot or "")
        if deployment is None or deployment["properties"]["provisioningState"] != "Succeeded":
            return 404, {"message": f"no deployment {slot} ready on {name}"}
        assert self.scorer is not None, "the test scores requests: set OnlineServices.scorer"
        text = data.decode() if isinstance(data, bytes) else str(data)
        return 200, self.scorer(deployment, text)
