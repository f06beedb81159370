"""Managed online endpoints on azureml-v2, through the real MLClient over replayed REST
(tests/azure/replay_endpoints.py), driven by the same blue/green rules as the local backend
(service/core/rollout.py).

What runs for real: the SDK's entities, request building, LRO pollers and the code upload (score.py goes
to Azurite through the SAS the workspace hands out); each scoring request is answered by *that uploaded
score.py* (init() on the version's files, run() on the body), as Azure's inference server would. What
is not: Azure building the image and starting the container (a deployment's failure is the replay's
`fail_deployments`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from amllib.backends.azure.v2 import AzureMLV2Backend
from amllib.endpoints import get_endpoints
from amllib.endpoints.azure_v2 import AzureV2Endpoints
from amllib.errors import EndpointNotFound, InvalidInput, SmokeTestFailed
from service.core import rollout
from tests.azure.azurite import KEY, Azurite
from tests.azure.replay import ARM, Workspace, replay_settings, replayed_backend
from tests.azure.replay_endpoints import OnlineServices
from tests.azure.test_v2_replay import AzuriteContainers, code_upload_sas

LOOKUP = OrderedDict([("Pclass", 0), ("Gender", {"male": 1, "female": 0})])
FLAGS = ["died_proba", "survived_proba"]
SAMPLE = {"Pclass": 1, "Gender": "female"}


def model_files(folder: Path, seed: int) -> Path:
    """A version of the seed's model contract (each seed a different forest, so answers tell versions apart)."""
    rng = np.random.default_rng(seed)
    features = np.column_stack([rng.integers(1, 4, 200), rng.integers(0, 2, 200)])
    labels = (features[:, 0] == 1) | (features[:, 1] == 0)
    model = RandomForestClassifier(n_estimators=3 + seed, random_state=seed).fit(features, labels)
    folder.mkdir(parents=True)
    for name, value in (("model.pkl", model), ("lookup.pkl", LOOKUP), ("flags.pkl", FLAGS)):
        (folder / name).write_bytes(pickle.dumps(value))
    return folder


class UploadedScoreScript:
    """Azure's side of a scoring request: the deployment's code as uploaded (Azurite), its score.py loaded
    with AZUREML_MODEL_DIR on the version's files, init() once per deployment, run(raw) per request."""

    def __init__(
        self, workspace: Workspace, azurite: Azurite, versions: dict[tuple[str, int], Path], tmp: Path
    ) -> None:
        self.workspace, self.azurite, self.versions, self.tmp = workspace, azurite, versions, tmp
        self.loaded: dict[str, Any] = {}
        self.answered: list[tuple[str, int]] = []

    def __call__(self, deployment: dict[str, Any], raw: str) -> Any:
        props = deployment["properties"]
        model_id = props["model"]
        name, version = model_id.rsplit("/models/", 1)[1].split("/versions/")
        key = f"{deployment['id']}@{model_id}@{props['codeConfiguration']['codeId']}"
        if key not in self.loaded:
            self.loaded[key] = self._load(props, self.versions[(name, int(version))])
        self.answered.append((name, int(version)))
        return self.loaded[key].run(raw)

    def _load(self, props: dict[str, Any], files: Path) -> Any:
        from azure.storage.blob import ContainerClient

        code = self.workspace.codes[props["codeConfiguration"]["codeId"]]["properties"]["codeUri"]
        prefix = code.split("/code-upload/", 1)[1].rstrip("/")
        script = props["codeConfiguration"]["scoringScript"]
        container = ContainerClient(self.azurite.url, "code-upload", credential=KEY)
        target = self.tmp / f"score-{len(self.loaded)}.py"
        target.write_bytes(container.download_blob(f"{prefix}/{script}").readall())
        spec = importlib.util.spec_from_file_location(target.stem, target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        os.environ["AZUREML_MODEL_DIR"] = str(files)
        try:
            module.init()
        finally:
            del os.environ["AZUREML_MODEL_DIR"]
        return module


@pytest.fixture
def workspace() -> Workspace:
    return Workspace()


@pytest.fixture
def services(workspace: Workspace) -> OnlineServices:
    return OnlineServices(workspace)


@pytest.fixture
def versions(tmp_path: Path) -> dict[tuple[str, int], Path]:
    return {("titanic-model", v): model_files(tmp_path / "models" / str(v), seed=v) for v in (1, 2)}


@pytest.fixture
def backend(tmp_path: Path, workspace: Workspace, azurite: Azurite) -> AzureMLV2Backend:
    settings = replay_settings(tmp_path)
    backend = replayed_backend(settings, workspace, container_client=AzuriteContainers(azurite))
    workspace.upload_sas = code_upload_sas(azurite)
    for version in (1, 2):
        workspace.add_model_version("titanic-model", version, tags={}, properties={})
    return backend


@pytest.fixture
def endpoints(
    backend: AzureMLV2Backend,
    services: OnlineServices,
    workspace: Workspace,
    azurite: Azurite,
    versions: dict[tuple[str, int], Path],
    tmp_path: Path,
) -> AzureV2Endpoints:
    services.scorer = UploadedScoreScript(workspace, azurite, versions, tmp_path)
    found = get_endpoints(backend.settings, backend)  # as the worker builds it
    assert isinstance(found, AzureV2Endpoints)
    return found


def deploy(endpoints: AzureV2Endpoints, backend: AzureMLV2Backend, version: int, **extra: Any) -> dict[str, Any]:
    spec = {"endpoint": "titanic-ep", "model": "titanic-model", "version": version, "samples": [SAMPLE], **extra}
    return rollout.deploy(endpoints, backend, spec)


def test_blue_green_canary_promote_and_rollback_on_managed_online_endpoints(
    endpoints: AzureV2Endpoints,
    backend: AzureMLV2Backend,
    services: OnlineServices,
    workspace: Workspace,
    versions: dict[tuple[str, int], Path],
) -> None:
    first = deploy(endpoints, backend, 1)
    assert first["slot"] == "blue" and first["traffic"] == {"blue": 100}
    endpoint = services.endpoints["titanic-ep"]
    assert endpoint["properties"]["authMode"] == "Key"  # key auth, as the issue asks
    sent = services.deployments["titanic-ep"]["blue"]
    assert sent["properties"]["model"] == f"{ARM}/models/titanic-model/versions/1"  # the SDK resolved azureml:name:v
    assert sent["properties"]["codeConfiguration"]["scoringScript"] == "score.py"
    assert (
        sent["properties"]["instanceType"] == "Standard_DS3_v2"
        and "/environments/" in sent["properties"]["environmentId"]
    )
    # the smoke test went to blue, through the scoring URI with the key, and score.py answered from v1's files
    assert services.scored[-1] == ("titanic-ep", "blue")
    assert set(first["smoke"]["first_answer"]) == set(FLAGS)

    info = endpoints.get("titanic-ep")
    assert info.scoring_url == "https://titanic-ep.westus.inference.ml.azure.com/score" and info.health == "up"
    assert [(d.name, d.version, d.traffic) for d in info.deployments] == [("blue", 1, 100)]

    canary = deploy(endpoints, backend, 2, traffic=10)
    assert canary["slot"] == "green" and canary["traffic"] == {"green": 10, "blue": 90}
    assert services.endpoints["titanic-ep"]["properties"]["traffic"] == {"green": 10, "blue": 90}

    promoted = deploy(endpoints, backend, 2)  # the version green holds: only traffic moves
    assert promoted["traffic"] == {"green": 100, "blue": 0}
    assert services.endpoints["titanic-ep"]["properties"]["traffic"] == {"green": 100}  # the SDK strips zeroes
    info = endpoints.get("titanic-ep")
    assert [(d.name, d.version, d.traffic) for d in info.deployments] == [("blue", 1, 0), ("green", 2, 100)]

    # each slot answers from its own version's files, through the score.py uploaded with it
    scorer = services.scorer
    assert isinstance(scorer, UploadedScoreScript)
    for version, slot in ((1, "blue"), (2, "green")):
        status, answer = endpoints.invoke("titanic-ep", "/api/predict", SAMPLE, slot=slot)
        assert status == 200 and set(answer) == set(FLAGS) and scorer.answered[-1] == ("titanic-model", version)
    assert endpoints.invoke("titanic-ep", "/score", {"data": [SAMPLE, SAMPLE]}, slot="green")[0] == 200
    status, refused = endpoints.invoke("titanic-ep", "/api/predict", {"Pclass": 1}, slot="green")
    assert status == 400 and "Gender" in refused["error"]  # run()'s error body read back as the local 400

    back = rollout.rollback(endpoints, {"endpoint": "titanic-ep", "samples": [SAMPLE]})
    assert back["slot"] == "blue" and back["version"] == 1 and back["traffic"] == {"blue": 100, "green": 0}
    assert services.scored[-1] == ("titanic-ep", "blue")  # blue was smoke-tested before traffic moved
    assert services.endpoints["titanic-ep"]["properties"]["traffic"] == {"blue": 100}


def test_a_deployment_azure_reports_failed_leaves_the_live_version_serving(
    endpoints: AzureV2Endpoints, backend: AzureMLV2Backend, services: OnlineServices
) -> None:
    deploy(endpoints, backend, 1)
    services.fail_deployments["green"] = "Container could not start: init() raised"
    services.logs[("titanic-ep", "green")] = "Traceback ...\nModelContractError: the model's files lack lookup.pkl"
    with pytest.raises(SmokeTestFailed) as failed:
        deploy(endpoints, backend, 2)
    assert "lack lookup.pkl" in str(failed.value)  # the reason comes with the container log's tail
    assert set(services.deployments["titanic-ep"]) == {"blue"}  # the failed version is not kept
    assert services.endpoints["titanic-ep"]["properties"]["traffic"] == {"blue": 100}


def test_a_first_deployment_that_fails_leaves_no_endpoint_behind(
    endpoints: AzureV2Endpoints, backend: AzureMLV2Backend, services: OnlineServices, workspace: Workspace
) -> None:
    services.updating_polls = 1  # the SDK's poller waits out an operation that is still Updating
    services.fail_deployments["blue"] = "ImageBuildFailure"
    with pytest.raises(SmokeTestFailed, match="ImageBuildFailure"):
        deploy(endpoints, backend, 1)
    assert services.endpoints == {}
    polls = [p for m, p in workspace.requests if "/mfeOperationsStatus/" in p]
    assert len(polls) == 2 * len(services.operations)  # Updating, then the end, for each operation
    with pytest.raises(EndpointNotFound):
        endpoints.get("titanic-ep")


def test_keys_rotate_and_the_old_key_is_refused_by_the_scoring_uri(
    endpoints: AzureV2Endpoints, backend: AzureMLV2Backend, services: OnlineServices
) -> None:
    deploy(endpoints, backend, 1)
    before = endpoints.keys("titanic-ep")
    assert before == {
        "primary": services.keys["titanic-ep"]["primaryKey"],
        "secondary": services.keys["titanic-ep"]["secondaryKey"],
    }
    after = endpoints.regenerate_key("titanic-ep", "primary")
    assert after["primary"] != before["primary"] and after["secondary"] == before["secondary"]
    # the SDK reads the key again for each invoke: scoring goes on with the new one
    assert endpoints.invoke("titanic-ep", "/api/predict", SAMPLE, slot="blue")[0] == 200


def test_following_an_alias_is_kept_on_the_endpoint_and_delete_removes_it(
    endpoints: AzureV2Endpoints, backend: AzureMLV2Backend, services: OnlineServices
) -> None:
    deploy(endpoints, backend, 1)
    endpoints.set_follow("titanic-ep", {"model": "titanic-model", "alias": "production"})
    assert endpoints.get("titanic-ep").follow == {"model": "titanic-model", "alias": "production"}
    assert [e.name for e in endpoints.list_endpoints()] == ["titanic-ep"]
    endpoints.set_follow("titanic-ep", None)
    assert endpoints.get("titanic-ep").follow is None
    endpoints.delete("titanic-ep")
    assert endpoints.list_endpoints() == []
    with pytest.raises(EndpointNotFound):
        endpoints.delete("titanic-ep")


def test_the_smoke_test_without_samples_reads_the_versions_own_parameters(
    endpoints: AzureV2Endpoints,
    backend: AzureMLV2Backend,
    versions: dict[tuple[str, int], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scoring URI takes only POST: params come from the version's lookup.pkl, fetched once. (The download
    itself is models.download, contract-tested in test_azureml_v2_backend.py; here it copies the files.)"""
    fetched: list[tuple[str, int]] = []

    def download(name: str, version: int, dest: Path) -> list[str]:
        fetched.append((name, version))
        dest.mkdir(parents=True, exist_ok=True)
        for found in versions[(name, version)].iterdir():
            (dest / found.name).write_bytes(found.read_bytes())
        return sorted(p.name for p in dest.iterdir())

    monkeypatch.setattr(backend, "download_model", download)
    result = rollout.deploy(endpoints, backend, {"endpoint": "titanic-ep", "model": "titanic-model", "version": 1})
    assert result["smoke"]["passed"] and fetched == [("titanic-model", 1)]
    assert endpoints.invoke("titanic-ep", "/api/predict/params", None, slot="blue") == (
        200,
        {"Pclass": 0, "Gender": ["male", "female"]},
    )
    assert fetched == [("titanic-model", 1)]  # kept per version
    assert json.loads((backend.settings.home / "cache" / "endpoint-params" / "titanic-model-1.json").read_text())


def test_names_azure_refuses_are_refused_up_front_and_v1_has_no_endpoints(
    endpoints: AzureV2Endpoints, tmp_path: Path
) -> None:
    for name in ("ab", "a" * 33, "ends-", "9lives"):
        with pytest.raises(InvalidInput, match="3 to 32"):
            endpoints.get(name)
    v1 = replay_settings(tmp_path / "v1", backend="azureml")
    with pytest.raises(InvalidInput, match="retired"):
        get_endpoints(v1, object())  # type: ignore[arg-type]


def test_a_model_version_parses_from_a_deployment_azure_describes() -> None:
    from amllib.endpoints.azure_v2 import _model_of

    assert _model_of(f"{ARM}/models/titanic-model/versions/7") == ("titanic-model", 7)
    assert _model_of("azureml://registries/x/models/m/versions/latest") == (
        "azureml://registries/x/models/m/versions/latest",
        0,
    )
