"""Drive a running service through the whole flow with the shipped Titanic data, as a pipeline would.

    python scripts/api-demo.py [--url http://127.0.0.1:8000] [--token TOKEN]

Uploads data/titanic as a tar.gz, trains (waiting for the end), and downloads the best
model's archive (files + metadata.json) into model-api/from-api/.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", help="bearer token (AZML_API_TOKENS), if the service has any")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(ROOT / "data" / "titanic" / "titanic.csv", arcname="titanic.csv")
    with httpx.Client(base_url=args.url, headers=headers, timeout=3600) as api:
        data = api.post(
            "/data",
            params={"path": "titanic-data", "wait": 300},
            content=archive.getvalue(),
            headers={"content-type": "application/gzip"},
        )
        print("POST /data ->", data.status_code, json.dumps(data.json())[:300])
        data.raise_for_status()
        run = api.post(
            "/runs",
            params={"wait": 3600},
            json={
                "script": "scikit-titanic.py",
                "datapath": "titanic-data",
                "experiment": "titanic",
                "model": "titanic-model",
                "estimators": 100,
            },
        )
        print("POST /runs ->", run.status_code, json.dumps(run.json())[:600])
        run.raise_for_status()
        version = run.json()["model_version"]["version"]
        out = ROOT / "model-api" / "from-api"
        out.mkdir(parents=True, exist_ok=True)
        response = api.get(f"/models/titanic-model/versions/{version}/archive")
        response.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
            tar.extractall(out, filter="data")
        metadata = json.loads((out / "metadata.json").read_text())
        print(
            f"titanic-model version {metadata['version']}, accuracy {metadata['tags'].get('accuracy')}, "
            f"files in {out}: {sorted(p.name for p in out.iterdir())}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
