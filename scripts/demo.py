"""The whole flow on the configured backend with the shipped Titanic data: upload, train, register, fetch.

Runs the three seed scripts as a pipeline would, so it shows exactly what they do.
    python scripts/demo.py          run it
    python scripts/demo.py --once   run it unless it ran before with this AZML_HOME (./start.sh)
    python scripts/demo.py --skip   say it is skipped (./start.sh --no-demo)
Each run that completes is recorded in AZML_HOME/demo.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from amllib.settings import load_settings  # noqa: E402  (after the project is on the path)

OUTPUT = ROOT / "model-api" / "pickles"
MARKER = "demo.json"


def step(*argv: str) -> None:
    print(f"\n$ python {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv], cwd=ROOT, check=True)


def ran_before(home: Path) -> dict | None:
    try:
        return json.loads((home / MARKER).read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    home = load_settings().home
    if "--skip" in argv:
        print("start.sh: the demo is skipped (--no-demo); serving only")
        return 0
    before = ran_before(home)
    if "--once" in argv and before is not None:
        print(
            f"start.sh: the demo ran before ({before.get('at', '?')}: {before.get('model', '?')} version "
            f"{before.get('version', '?')}), so it is skipped; ./start.sh --demo runs it again"
        )
        return 0
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
    home.mkdir(parents=True, exist_ok=True)
    at = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    (home / MARKER).write_text(json.dumps({"at": at, "model": metadata["name"], "version": metadata["version"]}))
    print(
        f"\nFetched {metadata['name']} version {metadata['version']} "
        f"(accuracy {metadata['tags'].get('accuracy')}) into {OUTPUT}: {', '.join(sorted(os.listdir(OUTPUT)))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
