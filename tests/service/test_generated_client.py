"""A client generated from /openapi.json (openapi-python-client, as users generate one) runs the flow against a
live service, and gets a typed object, never a bare dict, from every JSON answer it reads."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.service.conftest import FULL_TOKEN, Service

PACKAGE = "azml_generated_client"


def json_answers(document: dict) -> list[tuple[str, str, str, dict]]:
    """(method, path, status, schema) of every 2xx JSON answer the document describes."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and schema is not None:
                    found.append((method, path, status, schema))
    return found


def generate(service: Service, into: Path) -> object:
    with service.client() as http:
        document = http.get("/openapi.json").json()
    unnamed = [(m, p, s) for m, p, s, schema in json_answers(document) if "$ref" not in schema]
    assert not unnamed, f"answers without a named model: {unnamed}"
    (into / "openapi.json").write_text(json.dumps(document))
    tool = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(tool), "generate", "--path", "openapi.json", "--meta", "none", "--output-path", PACKAGE],
        cwd=into,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]  # another test's generated package
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(into))


def typed(answer: object, model: str) -> object:
    """The answer is the generated class of that name (not a dict, not an ErrorBody, not None)."""
    assert type(answer).__name__ == model, (model, answer)
    assert type(answer).__module__.startswith(f"{PACKAGE}.models."), type(answer).__module__
    return answer


def test_a_generated_client_runs_upload_run_versions_fetch_with_a_type_for_each_answer(
    service: Service, tmp_path: Path
) -> None:
    generate(service, tmp_path)
    client_module = importlib.import_module(f"{PACKAGE}.client")
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")

    def api(group: str, name: str) -> object:
        return importlib.import_module(f"{PACKAGE}.api.{group}.{name}")

    client = client_module.AuthenticatedClient(
        base_url=service.url, token=FULL_TOKEN, timeout=httpx.Timeout(120), raise_on_unexpected_status=True
    )
    with client as client:
        files = models.UploadDataDataPostFilesBody(
            files=[types.File(payload=io.BytesIO(b"a,b\n1,2\n3,4\n"), file_name="train.csv", mime_type="text/csv")]
        )
        data = typed(api("data", "upload_data_data_post").sync(client=client, body=files, wait=60), "DataJob")
        assert data.status == "Completed" and data.digest.startswith("sha256:")

        run = api("runs", "submit_run_runs_post").sync(client=client, body=models.RunRequest(estimators=2), wait=120)
        typed(run, "RunJob")
        assert run.status == "Completed", run.error
        again = typed(api("runs", "get_run_runs_run_id_get").sync(run.id, client=client), "RunJob")
        assert again.model_version.additional_properties["version"] == 1 and again.data_version == data.digest

        metrics = typed(api("runs", "run_metrics_runs_run_id_metrics_get").sync(run.id, client=client), "RunMetrics")
        assert "accuracy" in metrics.metrics.additional_properties
        compared = api("runs", "runs_metrics_runs_metrics_get").sync(client=client, ids=run.id)
        assert typed(compared, "RunsMetrics").runs[0].id == run.id
        outputs = typed(api("runs", "run_outputs_runs_run_id_outputs_get").sync(run.id, client=client), "RunOutputs")
        assert outputs.files

        names = typed(api("models", "list_models_models_get").sync(client=client), "ModelNames")
        assert names.models == ["svc-model"]
        versions = api("models", "list_versions_models_name_versions_get").sync("svc-model", client=client)
        assert [typed(v, "ModelVersion").version for v in typed(versions, "ModelVersions").versions] == [1]
        summary = typed(api("models", "models_summary_models_summary_get").sync(client=client), "ModelsSummary")
        assert typed(summary.models[0], "ModelSummary").latest.version == 1

        fetch = api("models", "fetch_models_fetch_post").sync(
            client=client, body=models.FetchRequest(output_path="fetched"), wait=60
        )
        assert typed(fetch, "FetchJob").status == "Completed" and fetch.version == 1

        scripts = typed(api("catalog", "list_scripts_scripts_get").sync(client=client), "Scripts")
        assert "aml_v1_logging.py" in [s.name for s in scripts.scripts]
        paths = typed(api("catalog", "list_datastore_datastore_get").sync(client=client), "Datastore")
        assert [p.digest for p in paths.paths] == [data.digest]
        health = typed(api("health", "healthz_healthz_get").sync(client=client), "Health")
        assert health.status == "ok" and health.backend == "local"
        aliases = api("models", "list_aliases_models_name_aliases_get").sync("svc-model", client=client)
        assert typed(aliases, "Aliases").aliases == []
        typed(api("schedules", "list_schedules_schedules_get").sync(client=client), "Schedules")
        typed(api("deployments", "list_endpoints_deployments_get").sync(client=client), "Endpoints")
        typed(api("notifications", "list_notifications_notifications_get").sync(client=client), "Notifications")
        typed(api("models", "list_approvals_approvals_get").sync(client=client), "Approvals")
