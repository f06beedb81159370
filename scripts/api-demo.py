"""Drive a running service through the whole flow with the shipped Titanic data, as a pipeline would.

    python scripts/api-demo.py [--url http://127.0.0.1:8000] [--token TOKEN]

Uploads data/titanic as a tar.gz, trains (waiting for the end), and downloads the archive
(files + metadata.json) of the model's best version by accuracy into model-api/from-api/.
The address defaults to AZML_HOST and AZML_PORT, as ./start.sh serves; the token is the
part after `name:` of an AZML_API_TOKENS entry (or AZML_TOKEN).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    host, port = os.environ.get("AZML_HOST") or "127.0.0.1", os.environ.get("AZML_PORT") or "8000"
    parser.add_argument("--url", default=f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}")
    parser.add_argument(
        "--token", default=os.environ.get("AZML_TOKEN"), help="bearer token (after 'name:' in AZML_API_TOKENS)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "model-api" / "from-api", help="where the files go")
    args = parser.parse_args()
    try:
        return demo(args)
    except httpx.ConnectError:
        print(f"ERROR! no service answers at {args.url}: start it with ./start.sh (or pass --url)", file=sys.stderr)
        return 1
    except httpx.HTTPStatusError as exc:
        print(
            f"ERROR! {exc.request.method} {exc.request.url.path} answered {exc.response.status_code}: "
            f"{exc.response.text[:300]}",
            file=sys.stderr,
        )
        return 1


def best_version(api: httpx.Client, model: str) -> int:
    """The version with the highest accuracy tag (the latest when none has one), as fetch --use-best picks."""
    versions = api.get(f"/models/{model}/versions").raise_for_status().json()["versions"]
    scored = [v for v in versions if isinstance(v["tags"].get("accuracy"), int | float)]
    if not scored:
        return versions[-1]["version"]
    return max(scored, key=lambda v: (v["tags"]["accuracy"], v["version"]))["version"]


def demo(args: argparse.Namespace) -> int:
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
        print(f"this run registered version {run.json()['model_version']['version']}")
        version = best_version(api, "titanic-model")
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
        response = api.get(f"/models/titanic-model/versions/{version}/archive")
        response.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
            tar.extractall(out, filter="data")
        metadata = json.loads((out / "metadata.json").read_text())
        print(
            f"best titanic-model: version {metadata['version']}, accuracy {metadata['tags'].get('accuracy')}, "
            f"files in {out}: {sorted(p.name for p in out.iterdir())}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
