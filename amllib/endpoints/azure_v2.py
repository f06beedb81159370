"""Online endpoints on Azure ML (azureml-v2): a ManagedOnlineEndpoint with key auth per endpoint, a
ManagedOnlineDeployment per slot (blue, green) holding one model version, traffic moved with the
endpoint's traffic map. The scoring script is amllib/scoring.py itself (uploaded as `score.py`, its
init()/run() are Azure's contract), on the pinned environment the training runs use plus Azure's
inference server.

What the slots mean (the rollback target, the smoke test) is service/core/rollout.py's, as on the local
backend. Where Azure differs:
- a deployment takes minutes to build; `deploy` waits up to AZML_ENDPOINT_DEPLOY_MINUTES and a
  deployment Azure reports Failed (the container would not start: usually init() refused the model's
  files) is a SmokeTestFailed carrying the tail of its logs, so what served keeps serving;
- requests reach a deployment through `online_endpoints.invoke` pinned to the slot (the
  `azureml-model-deployment` header), and Azure answers 200 with whatever run() returns, so an
  `{"error": ...}` body is read back as the 400 the local endpoint gives;
- the scoring URI only takes POST: `/api/predict/params` is read from the version's own files
  (downloaded once per version) and `/api/info` from the deployment;
- request figures live in Azure Monitor: `stats` is empty here.

Proven through the real MLClient over replayed REST (tests/azure/test_v2_endpoints.py); the scoring
requests of those tests run the uploaded score.py on the version's files. Not proven here: Azure's
build of the image and its inference server.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from amllib.backends.azure.env import PYTHON_VERSION, TRAINING_PIP_PACKAGES
from amllib.backends.base import ModelVersion
from amllib.endpoints.base import DeploymentInfo, EndpointInfo, Endpoints
from amllib.errors import EndpointNotFound, InvalidInput, NotFound, SmokeTestFailed, quoted
from amllib.scoring import Predictor, model_folder
from amllib.settings import Settings

SCORING_MODULE = Path(__file__).resolve().parent.parent / "scoring.py"
INFERENCE_SERVER = "azureml-inference-server-http==1.4.1"
ALIAS_TAG = "aml-control-plane.alias"
FOLLOW_TAG = "aml-control-plane.follow"
MANAGED_TAG = "aml-control-plane"
LOG_LINES = 40
# Azure's own rule for an online endpoint's name (unique within the region): 3-32 characters.
AZURE_ENDPOINT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
MODEL_ID = re.compile(r"/models/([^/]+)/versions/([^/]+)$")


class AzureV2Endpoints(Endpoints):
    def __init__(self, settings: Settings, backend: Any) -> None:
        """backend: the AzureMLV2Backend whose MLClient, retries and error mapping every call goes through."""
        self.settings = settings
        self.backend = backend
        self._params_lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self.backend.client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.backend.call(what, fn, *args, **kwargs)

    def _wait(self, what: str, poller: Any, *, minutes: float = 10.0) -> Any:
        """An operation's outcome within its time; Azure's failure as ours."""
        result = self._call(what, poller.result, timeout=minutes * 60)
        if not poller.done():  # LROPoller.result(timeout) returns when the time is up; it never raises for it
            raise SmokeTestFailed(f"{what}: not done within {minutes:g} minutes")
        return result

    # -- reading --------------------------------------------------------------------------------
    def _endpoint(self, name: str) -> Any:
        check_endpoint_name(name)
        try:
            return self._call(f"reading endpoint {quoted(name)}", self.client.online_endpoints.get, name)
        except NotFound:
            raise EndpointNotFound(f"endpoint {quoted(name)} not found") from None

    def _deployments(self, name: str) -> list[Any]:
        found = self._call(
            f"listing the deployments of {quoted(name)}", self.client.online_deployments.list, endpoint_name=name
        )
        return list(self._call(f"listing the deployments of {quoted(name)}", lambda: list(found)))

    def _info(self, endpoint: Any) -> EndpointInfo:
        traffic = {str(k): int(v) for k, v in (endpoint.traffic or {}).items()}
        deployments = []
        for found in sorted(self._deployments(endpoint.name), key=lambda d: d.name):
            model, version = _model_of(found.model)
            state = _state(found.provisioning_state)
            deployments.append(
                DeploymentInfo(
                    name=found.name,
                    model=model,
                    version=version,
                    alias=(found.tags or {}).get(ALIAS_TAG) or None,
                    traffic=traffic.get(found.name, 0),
                    error=f"Azure ML reports the deployment {state}" if state in ("failed", "canceled") else None,
                )
            )
        follow = (endpoint.tags or {}).get(FOLLOW_TAG)
        state = _state(endpoint.provisioning_state)
        return EndpointInfo(
            name=endpoint.name,
            scoring_url=endpoint.scoring_uri or "",
            deployments=deployments,
            health="up" if state == "succeeded" else "down",
            follow=_follow(follow),
            extra={"provisioning_state": state, "auth_mode": _state(endpoint.auth_mode)},
        )

    def list_endpoints(self) -> list[EndpointInfo]:
        found = self._call("listing online endpoints", lambda: list(self.client.online_endpoints.list()))
        return [self._info(endpoint) for endpoint in sorted(found, key=lambda e: e.name)]

    def get(self, name: str) -> EndpointInfo:
        return self._info(self._endpoint(name))

    # -- changing -------------------------------------------------------------------------------
    def _ensure_endpoint(self, name: str) -> Any:
        try:
            return self._endpoint(name)
        except EndpointNotFound:
            pass
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        made = ManagedOnlineEndpoint(
            name=name, auth_mode="key", description="served by the ML control plane", tags={MANAGED_TAG: "true"}
        )
        what = f"creating endpoint {quoted(name)}"
        self._wait(what, self._call(what, self.client.online_endpoints.begin_create_or_update, made))
        return self._endpoint(name)

    def _update_endpoint(self, endpoint: Any, what: str) -> None:
        self._wait(what, self._call(what, self.client.online_endpoints.begin_create_or_update, endpoint))

    def deploy(self, name: str, slot: str, version: ModelVersion, *, alias: str | None) -> None:
        from azure.ai.ml.entities import CodeConfiguration, ManagedOnlineDeployment

        self._ensure_endpoint(name)
        what = f"deploying {version.name}:{version.version} to {name}/{slot}"
        with tempfile.TemporaryDirectory(prefix="aml-score-") as folder:
            code = Path(folder)
            shutil.copyfile(SCORING_MODULE, code / "score.py")
            deployment = ManagedOnlineDeployment(
                name=slot,
                endpoint_name=name,
                model=f"azureml:{version.name}:{version.version}",
                code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
                environment=self.environment(),
                instance_type=self.settings.endpoint_instance_type,
                instance_count=1,
                tags={ALIAS_TAG: alias or ""},
            )
            poller = self._call(what, self.client.online_deployments.begin_create_or_update, deployment)
        try:
            self._wait(what, poller, minutes=self.settings.endpoint_deploy_minutes)
        except SmokeTestFailed:
            raise
        except Exception as exc:  # Azure says the deployment failed: it serves nothing, what served stays
            raise SmokeTestFailed(f"{what} failed: {exc}{self._logs_tail(name, slot)}") from exc
        found = self._call(what, self.client.online_deployments.get, slot, name)
        state = _state(found.provisioning_state)
        if state != "succeeded":
            raise SmokeTestFailed(f"{what}: Azure ML reports it {state}{self._logs_tail(name, slot)}")

    def environment(self) -> Any:
        """The training runs' pinned packages (env.py) plus Azure's inference server, which calls score.py."""
        from azure.ai.ml.entities import Environment

        conda = {
            "name": "aml-control-plane-serving",
            "channels": ["conda-forge"],
            "dependencies": [
                f"python={PYTHON_VERSION}",
                "pip",
                {"pip": [*TRAINING_PIP_PACKAGES, INFERENCE_SERVER]},
            ],
        }
        return Environment(image=self.settings.env_image, conda_file=conda)

    def _logs_tail(self, name: str, slot: str) -> str:
        """The last lines of the deployment's container log, to say why it failed (nothing when unreadable)."""
        try:
            text = self._call(
                f"reading the logs of {name}/{slot}", self.client.online_deployments.get_logs, slot, name, LOG_LINES
            )
        except Exception:  # the reason we have is enough; a log that can't be read adds nothing
            return ""
        text = str(text or "").strip()
        return f"; its log ends: {text[-1500:]}" if text else ""

    def invoke(self, name: str, path: str, body: Any | None, *, slot: str) -> tuple[int, Any]:
        info = self.get(name)
        found = info.slot(slot)
        if found is None:
            return 404, {"error": f"endpoint {name} has no deployment {slot}"}
        if path == "/api/info":
            return 200, {"status": "alive", "model": found.model, "version": found.version, "alias": found.alias}
        if path == "/api/predict/params":
            return 200, self._params(found.model, found.version)
        if path not in ("/api/predict", "/score"):
            return 404, {"error": f"no route {path} on an Azure ML endpoint"}
        with tempfile.TemporaryDirectory(prefix="aml-request-") as folder:
            request = Path(folder) / "request.json"
            request.write_text(json.dumps(body))
            try:
                text = self._call(
                    f"scoring on {name}/{slot}",
                    self.client.online_endpoints.invoke,
                    endpoint_name=name,
                    request_file=str(request),
                    deployment_name=slot,
                )
            except InvalidInput as exc:
                return 400, {"error": str(exc)}
            except NotFound as exc:
                return 404, {"error": str(exc)}
        try:
            answer = json.loads(text)
        except ValueError:
            return 502, {"error": f"the deployment answered something that is not JSON: {text[:200]}"}
        if isinstance(answer, str):  # Azure's inference server passes a str from run() through as a JSON string
            with contextlib.suppress(ValueError):
                answer = json.loads(answer)
        if isinstance(answer, dict) and set(answer) == {"error"}:
            return 400, answer
        return 200, answer

    def _params(self, model: str, version: int) -> dict[str, Any]:
        """The version's features and categories, from its own lookup.pkl (kept per version: it never changes)."""
        cache = self.settings.home / "cache" / "endpoint-params"
        kept = cache / f"{model}-{version}.json"
        with self._params_lock:
            if kept.is_file():
                return dict(json.loads(kept.read_text()))
            with tempfile.TemporaryDirectory(prefix="aml-params-") as folder:
                files = Path(folder) / "model"
                self.backend.download_model(model, version, files)
                params = Predictor(model_folder(files)).params()
            cache.mkdir(parents=True, exist_ok=True)
            kept.write_text(json.dumps(params))
            return params

    def set_traffic(self, name: str, traffic: dict[str, int]) -> None:
        endpoint = self._endpoint(name)
        endpoint.traffic = {slot: int(share) for slot, share in traffic.items()}
        self._update_endpoint(endpoint, f"moving the traffic of {quoted(name)}")

    def remove_slot(self, name: str, slot: str) -> None:
        what = f"deleting deployment {name}/{slot}"
        try:
            poller = self._call(what, self.client.online_deployments.begin_delete, slot, name)
        except NotFound:
            return
        self._wait(what, poller)

    def set_follow(self, name: str, follow: dict[str, str] | None) -> None:
        endpoint = self._endpoint(name)
        tags = dict(endpoint.tags or {})
        tags[FOLLOW_TAG] = json.dumps(follow, sort_keys=True) if follow else ""
        endpoint.tags = tags
        self._update_endpoint(endpoint, f"recording what {quoted(name)} follows")

    def delete(self, name: str) -> None:
        self._endpoint(name)
        what = f"deleting endpoint {quoted(name)}"
        self._wait(what, self._call(what, self.client.online_endpoints.begin_delete, name))

    def keys(self, name: str) -> dict[str, str]:
        self._endpoint(name)
        found = self._call(f"reading the keys of {quoted(name)}", self.client.online_endpoints.get_keys, name)
        return {"primary": found.primary_key, "secondary": found.secondary_key}

    def regenerate_key(self, name: str, which: str) -> dict[str, str]:
        self._endpoint(name)
        what = f"regenerating the {which} key of {quoted(name)}"
        self._wait(what, self._call(what, self.client.online_endpoints.begin_regenerate_keys, name, key_type=which))
        return self.keys(name)

    def stats(self, name: str) -> dict[str, Any]:
        return {}


def check_endpoint_name(name: str) -> None:
    if not AZURE_ENDPOINT_NAME.match(name or ""):
        raise InvalidInput(
            f"endpoint name {quoted(name)}: Azure ML wants 3 to 32 letters, digits and '-', starting with a letter "
            "and not ending with '-'"
        )


def _state(value: Any) -> str:
    """A provisioning state or mode as Azure spells it, lower case (the SDK gives enums or strings)."""
    return str(getattr(value, "value", value) or "").lower()


def _model_of(model: Any) -> tuple[str, int]:
    """(name, version) of a deployment's model, as Azure gives it back: the version's ARM id."""
    found = MODEL_ID.search(str(model or ""))
    if found is None or not found.group(2).isdigit():
        return str(model or "?"), 0
    return found.group(1), int(found.group(2))


def _follow(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        found = json.loads(text)
        if isinstance(found, dict) and isinstance(found.get("model"), str) and isinstance(found.get("alias"), str):
            return {"model": found["model"], "alias": found["alias"]}
    return None
