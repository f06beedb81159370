"""POST /deployments and friends on the local backend (real endpoint processes): blue/green with a smoke test,
a canary promoted, rollback, key auth, a version that cannot be served, an endpoint following an alias."""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import assert_refused, tar_bytes

TAR = {"Content-Type": "application/x-tar"}
PASSENGER = {"Pclass": 1, "Age": 30, "Gender": "female"}


def trained(make_app, survivals: list[float], **settings: object) -> TestClient:
    client = make_app(script="contract_model.py", model="titanic-model", **settings)
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=TAR).status_code == 200
    for survival in survivals:
        run = client.post("/runs", params={"wait": 120}, json={"args": {"survival": str(survival)}}).json()
        assert run["status"] == "Completed" and run["model_version"], run
    return client


def deploy(client: TestClient, **body: object) -> dict:
    answer = client.post("/deployments", params={"wait": 120}, json={"endpoint": "titanic", **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def scoring(client: TestClient, endpoint: str = "titanic") -> tuple[str, dict[str, str]]:
    found = client.get(f"/deployments/{endpoint}").json()
    keys = client.post(f"/deployments/{endpoint}/keys").json()
    return found["scoring_url"], {"Authorization": f"Bearer {keys['primary']}"}


def test_blue_green_canary_promote_and_rollback(make_app) -> None:
    client = trained(make_app, [0.9, 0.1, 0.5])
    first = deploy(client, version=1)
    assert (first["status"], first["slot"], first["version"]) == ("Completed", "blue", 1)
    assert first["traffic"] == {"blue": 100}
    assert first["smoke"]["passed"] is True  # a request built from /api/predict/params answered first
    url, auth = scoring(client)
    answer = httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth)
    assert answer.status_code == 200 and answer.headers["x-model-version"] == "1"
    v1_survival = answer.json()["survived_proba"]
    assert httpx.post(f"{url}/api/predict", json=PASSENGER).status_code == 401  # a key is needed
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers={"Authorization": "Bearer nope"}).status_code == 401
    params = client.get("/deployments/titanic/params").json()
    assert params["params"] == {"Pclass": 0, "Age": 0, "Gender": ["female", "male"]} and params["version"] == 1
    tried = client.post("/deployments/titanic/try", json=PASSENGER).json()
    assert (tried["status"], tried["slot"], tried["answer"]) == (200, "blue", answer.json())
    assert client.post("/deployments/titanic/try", json={"Pclass": 1}).json()["status"] == 400  # the endpoint's word
    info = httpx.get(f"{url}/api/info", headers=auth).json()
    assert (info["model"], info["version"], info["deployment"]) == ("titanic-model", 1, "blue")

    canary = deploy(client, version=2, traffic=10)
    assert canary["slot"] == "green" and canary["traffic"] == {"green": 10, "blue": 90}
    assert canary["previous"] == {"slot": "blue", "model": "titanic-model", "version": 1}
    served = [httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth) for _ in range(200)]
    versions = [r.headers["x-model-version"] for r in served]
    assert all(r.status_code == 200 for r in served) and set(versions) == {"1", "2"}
    assert 2 <= versions.count("2") <= 50  # about 10 % (binomial: 200 × 0.1 = 20; this band fails once in ~10⁹)
    v2 = httpx.post(f"{url}/api/predict", json=PASSENGER, headers={**auth, "azureml-model-deployment": "green"})
    assert v2.json()["survived_proba"] < v1_survival  # the other version answers differently

    assert_refused(
        client.post("/deployments", params={"wait": 60}, json={"endpoint": "titanic", "version": 3}),
        409,
        "canary",
    )  # a third version while a canary runs: promote it or roll back first

    promoted = deploy(client, version=2, traffic=100)
    assert promoted["slot"] == "green" and promoted["traffic"] == {"green": 100, "blue": 0}
    rolled = client.post("/deployments/titanic/rollback", params={"wait": 60}).json()
    assert (rolled["action"], rolled["slot"], rolled["version"]) == ("rollback", "blue", 1)
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth).headers["x-model-version"] == "1"
    detail = client.get("/deployments/titanic").json()
    assert [(h["action"], h["status"]) for h in detail["history"]] == [
        ("rollback", "Completed"),
        ("deploy", "Completed"),
        ("deploy", "Failed"),
        ("deploy", "Completed"),
        ("deploy", "Completed"),
    ]
    assert detail["health"] == "up" and detail["stats"]["blue"]["requests"] >= 1
    assert detail["scoring_url"] == url and "primary" not in str(detail)  # never the keys

    keys = client.post("/deployments/titanic/keys/regenerate", json={"key": "primary"}).json()
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth).status_code == 401  # the old key
    fresh = {"Authorization": f"Bearer {keys['primary']}"}
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers=fresh).status_code == 200

    assert client.delete("/deployments/titanic").json()["deleted"] is True
    assert client.get("/deployments").json() == {"endpoints": []}
    assert_refused(client.get("/deployments/titanic"), 404, "titanic")


def test_a_version_that_cannot_be_served_never_takes_traffic(make_app) -> None:
    client = trained(make_app, [0.9])
    deploy(client, version=1)
    client.post("/runs", params={"wait": 120}, json={"script": "aml_v1_logging.py"})  # v2: no model contract
    failed = client.post("/deployments", params={"wait": 120}, json={"endpoint": "titanic", "version": 2})
    assert failed.status_code == 422, failed.text
    assert failed.json()["error"] == "smoke_test_failed" and "model.pkl" in failed.json()["detail"]
    found = client.get("/deployments/titanic").json()
    assert [(d["slot"], d["version"], d["traffic"]) for d in found["deployments"]] == [("blue", 1, 100)]
    bad_sample = client.post(
        "/deployments", params={"wait": 60}, json={"endpoint": "titanic", "version": 1, "samples": [{"Pclass": 1}]}
    )
    assert bad_sample.status_code == 422 and "not found in model lookup" in bad_sample.json()["detail"]
    refused = client.post("/deployments", params={"wait": 60}, json={"endpoint": "other", "version": 2})
    assert refused.status_code == 422 and "lack" in refused.json()["detail"]
    assert [e["endpoint"] for e in client.get("/deployments").json()["endpoints"]] == ["titanic"]  # none half-made
    assert_refused(client.post("/deployments", json={"endpoint": "Bad_Name"}), 422, "endpoint")
    assert_refused(client.post("/deployments", json={"endpoint": "titanic", "follow": True}), 422, "alias")
    assert_refused(client.post("/deployments/nothing/rollback"), 404, "nothing")
    assert_refused(client.post("/deployments/titanic/rollback", params={"wait": 60}), 409, "roll back to")


def test_an_endpoint_following_an_alias_rolls_when_it_moves(make_app) -> None:
    client = trained(make_app, [0.9, 0.5])
    assert client.put("/models/titanic-model/aliases/production", json={"version": 1}).status_code == 200
    first = deploy(client, alias="production", follow=True)
    assert first["version"] == 1 and first["follow"] is True
    assert client.put("/models/titanic-model/aliases/production", json={"version": 2}).status_code == 200
    deadline = time.time() + 60
    while True:
        history = client.get("/deployments/titanic").json()["history"]
        if len(history) == 2 and history[0]["status"] == "Completed":
            break
        assert time.time() < deadline, history
        time.sleep(0.3)
    rolled = history[0]
    assert rolled["version"] == 2 and rolled["created_by"] == "follow:production"
    assert rolled["trigger"] == "alias production of titanic-model moved to version 2"
    url, auth = scoring(client)
    assert httpx.post(f"{url}/api/predict", json=PASSENGER, headers=auth).headers["x-model-version"] == "2"
    time.sleep(2.5)  # another pass of the follower: one move, one deployment
    assert len(client.get("/deployments/titanic").json()["history"]) == 2


def test_v1_is_refused_and_v2_serves_on_managed_online_endpoints(tmp_path) -> None:
    from amllib.endpoints import get_endpoints
    from amllib.errors import InvalidInput
    from tests.conftest import make_settings

    with pytest.raises(InvalidInput, match="retired"):
        get_endpoints(make_settings(tmp_path, backend="azureml"), backend=None)  # type: ignore[arg-type]
    from amllib.endpoints.azure_v2 import AzureV2Endpoints

    v2 = get_endpoints(make_settings(tmp_path, backend="azureml-v2"), backend=None)  # type: ignore[arg-type]
    assert isinstance(v2, AzureV2Endpoints)  # managed online endpoints: tests/azure/test_v2_endpoints.py
