"""The docs' API examples, run as printed against a live service, so the docs cannot drift from the API.

The first `sh` block of docs/api.md (every route), then the README's "First calls", run with bash
(`set -euo pipefail`) against a service set up as ./start.sh sets it up on a fresh clone (no tokens,
loopback; .env.sample's defaults), plus the variables the examples' comments name (AZML_DATA_ROOT,
AZML_CALLBACK_HOSTS). Only the address is substituted, and the endless event streams are cut after two
seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from amllib.settings import REPO_ROOT


def sh_block(path: Path, heading: str | None = None) -> str:
    """The first `sh` block of a page (after `heading`, when given)."""
    text = path.read_text()
    section = text[text.index(heading) :] if heading else text
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def run_block(block: str, url: str, work: Path) -> str:
    script = block.replace("API=http://127.0.0.1:8000", f"API={url}", 1)
    assert f"API={url}" in script
    lines = []
    for line in script.splitlines():
        if line.startswith("curl -sS -N "):  # an endless stream: two seconds of it (curl's exit 28)
            line = line.replace("curl -sS -N ", "curl -sS -N --max-time 2 ", 1).split("  #")[0] + " || [ $? -eq 28 ]"
        lines.append(line)
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(lines)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    return done.stdout


def test_every_api_example_in_the_readme_works_as_printed(make_service, tmp_path: Path) -> None:
    server_data = tmp_path / "server-data" / "titanic"
    shutil.copytree(REPO_ROOT / "data" / "titanic", server_data)
    service = make_service(
        AZML_API_TOKENS="",
        AZML_API_READ_TOKENS="",
        AZML_TRAINING_DIR=str(REPO_ROOT / "training"),
        AZML_SCRIPT="scikit-titanic.py",
        AZML_DATAPATH="titanic-data",
        AZML_EXPERIMENT="titanic",
        AZML_MODEL="titanic-model",
        AZML_COMPUTE_NAME="cpu-cluster",
        AZML_DATA_ROOT=str(tmp_path / "server-data"),
        AZML_CALLBACK_HOSTS="127.0.0.1:9999",
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(REPO_ROOT / "data")
    out = run_block(sh_block(REPO_ROOT / "docs" / "api.md"), service.url, work)
    assert '"status":"ok"' in out
    assert '"model_version":{"name":"titanic-model"' in out  # the run waited for registered a version
    assert "Accuracy on" in out  # its log
    assert '"kind":"fetch"' in out and (tmp_path / "outputs" / "pickles" / "metadata.json").is_file()
    assert (work / "model.tar.gz").stat().st_size > 0
    assert "event: run" in out  # the streams delivered events
    assert '"survived_proba"' in out  # the endpoint answered a prediction
    first = run_block(sh_block(REPO_ROOT / "README.md", "## First calls"), service.url, work)
    assert first.count('"status":"Completed"') >= 3, first[-3000:]  # the upload, the run, the fetch
    assert '"versions":[' in first and "accuracy" in first
    assert "Traceback" not in service.log.read_text()
