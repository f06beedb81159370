"""service/core/redact.py: a failed job's error names the caller's values, never the server's paths."""

from __future__ import annotations

from pathlib import Path

from tests.service.conftest import Service, assert_refused


def test_job_errors_carry_no_server_paths(service: Service, tmp_path: Path) -> None:
    server_data = Path(service.env["AZML_DATA_ROOT"])
    (server_data / "empty").mkdir(parents=True)
    outputs = Path(service.env["AZML_OUTPUT_ROOT"])
    outputs.mkdir(parents=True)
    (outputs / "afile").write_text("not a folder")
    with service.client() as client:
        empty = client.post("/data", params={"wait": 30}, json={"data_dir": "empty"})
        assert empty.status_code == 422
        assert "holds no files" in empty.json()["detail"]
        assert str(tmp_path) not in empty.text and "$AZML_DATA_ROOT/empty" in empty.json()["detail"]
        into_file = client.post("/models/fetch", json={"output_path": "afile/inner"})
        assert_refused(into_file, 422, "lies inside a file")
        assert str(tmp_path) not in into_file.text
