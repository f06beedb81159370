"""The whole flow on the configured backend with the shipped Titanic data: upload, train, register, fetch.

Runs the three seed scripts as a pipeline would, so it shows exactly what they do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "model-api" / "pickles"


def step(*argv: str) -> None:
    print(f"\n$ python {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True)


def main() -> int:
    os.environ.setdefault("AZML_DATAPATH", "titanic-data")
    os.environ.setdefault("AZML_SCRIPT", "scikit-titanic.py")
    os.environ.setdefault("AZML_EXPERIMENT", "titanic")
    os.environ.setdefault("AZML_MODEL", "titanic-model")
    os.environ.setdefault("AZML_COMPUTE_NAME", "cpu-cluster")
    try:
        step("scripts/upload-data.py", "--data-dir", "data/titanic")
        step("scripts/run-training.py", "--estimators", "100")
        step("scripts/fetch-model.py", "--use-best", "--output-path", str(OUTPUT))
    except subprocess.CalledProcessError as exc:
        print(f"demo failed at: {' '.join(map(str, exc.cmd[1:]))}", file=sys.stderr)
        return 1
    metadata = json.loads((OUTPUT / "metadata.json").read_text())
    print(
        f"\nFetched {metadata['name']} version {metadata['version']} "
        f"(accuracy {metadata['tags'].get('accuracy')}) into {OUTPUT}: {', '.join(sorted(os.listdir(OUTPUT)))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
