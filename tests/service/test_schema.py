"""schemathesis against a live service: no 5xx, and no answer outside what /openapi.json publishes.

In the suite the run is deterministic (fixed seed, deterministic generation, one worker, no example
database), so it cannot fail by chance. To hunt for new bugs, run it with fresh seeds:

    AZML_FUZZ_SEED=random ./test.sh tests/service/test_schema.py -s

Every finding becomes a fixed regression test of its own (e.g. tests/service/http/test_middleware.py).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

from tests.service.conftest import FULL_TOKEN, Service, upload

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_schemathesis_finds_no_server_error_and_nothing_off_schema(service: Service, tmp_path: Path) -> None:
    with service.client() as client:  # something to find: data, a run with a model version, a fetch
        upload(client, {"a.csv": b"1,2\n"})
        assert client.post("/runs", params={"wait": 60}, json={"estimators": 2}).status_code == 200
    st = Path(sys.executable).with_name("st")
    seed = os.environ.get("AZML_FUZZ_SEED", "20261127")
    fuzzing = seed == "random"
    if fuzzing:
        seed = str(random.SystemRandom().randrange(2**31))
        print(f"schemathesis seed {seed}")
    mode = [] if fuzzing else ["--generation-deterministic", "--workers", "1"]  # deterministic: no example database
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{service.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {FULL_TOKEN}",
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--request-timeout",
            "30",
            "--exclude-path",
            "/events",  # an endless stream by design; tests/service/core/test_events.py covers it
            "--seed",
            seed,
            *mode,
            "--report-dir",
            str(tmp_path / "schemathesis"),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) > 300, result.stdout[-3000:]  # it really tested the API
    assert "Traceback" not in service.log.read_text()
