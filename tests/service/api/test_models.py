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
