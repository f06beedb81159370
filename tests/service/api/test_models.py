"""service/api/models.py: fetching models and their versions."""

from __future__ import annotations

from tests.service.conftest import Service, upload


def test_fetch_of_unknown_model_or_version_answers_404_after_wait(service: Service) -> None:
    with service.client() as client:
        missing = client.post("/models/fetch", params={"wait": 30}, json={"model": "ghost"})
        assert missing.status_code == 404 and missing.json()["job"]["status"] == "Failed"
        assert "ghost" in missing.json()["detail"]
        upload(client, {"a.csv": b"1"})
        client.post("/runs", params={"wait": 60})
        unknown = client.post("/models/fetch", params={"wait": 30}, json={"version": 9})
        assert unknown.status_code == 404 and "no version 9" in unknown.json()["detail"]


def test_every_model_at_a_glance_with_its_latest_best_count_and_accuracy_trend(make_app) -> None:
    from tests.service.conftest import tar_bytes

    client = make_app()
    tar = {"Content-Type": "application/x-tar"}
    assert client.post("/data", params={"wait": 30}, content=tar_bytes({"a.csv": b"1"}), headers=tar).status_code == 200
    assert client.get("/models/summary").json() == {"models": []}
    for body in (
        {"model": "titanic"},  # aml_v1_logging.py: accuracy 0.93
        {"model": "titanic"},
        {"model": "titanic", "script": "no_accuracy.py"},  # the latest has no accuracy tag
        {"model": "other"},
    ):
        assert client.post("/runs", params={"wait": 60}, json=body).json()["status"] == "Completed"
    models = {m["name"]: m for m in client.get("/models/summary").json()["models"]}
    titanic = models["titanic"]
    assert titanic["versions"] == 3 and titanic["latest"] == {"version": 3, "accuracy": None}
    assert titanic["best"] == {"version": 2, "accuracy": 0.93}  # a tie goes to the newer version, as --use-best
    assert titanic["accuracy"] == [[1, 0.93], [2, 0.93]] and titanic["last_registered"].startswith("20")
    assert models["other"]["versions"] == 1 and models["other"]["best"] == {"version": 1, "accuracy": 0.93}
