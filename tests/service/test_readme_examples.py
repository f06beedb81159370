"""The README's API examples, run as printed against a live service, so the README cannot drift from the API.

The `sh` block under "## The API" runs with bash (`set -euo pipefail`) against a service set up as
./start.sh sets it up on a fresh clone (no tokens, loopback; .env.sample's defaults), plus the
variables the examples' comments name (AZML_DATA_ROOT, AZML_CALLBACK_HOSTS). Only the address is
substituted, and the endless event streams are cut after two seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from amllib.settings import REPO_ROOT


def api_block() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## The API") :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


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
    script = api_block().replace("API=http://127.0.0.1:8000", f"API={service.url}", 1)
    assert f"API={service.url}" in script
    lines = []
    for line in script.splitlines():
        if line.startswith("curl -sS -N "):  # an endless stream: two seconds of it (curl's exit 28)
            line = line.replace("curl -sS -N ", "curl -sS -N --max-time 2 ", 1).split("  #")[0] + " || [ $? -eq 28 ]"
        lines.append(line)
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(REPO_ROOT / "data")
    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(lines)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-3000:]
    assert '"status":"ok"' in out
    assert '"model_version":{"name":"titanic-model"' in out  # the run waited for registered a version
    assert "Accuracy on" in out  # its log
    assert '"kind":"fetch"' in out and (tmp_path / "outputs" / "pickles" / "metadata.json").is_file()
    assert (work / "model.tar.gz").stat().st_size > 0
    assert "event: run" in out  # the streams delivered events
    assert '"survived_proba"' in out  # the endpoint answered a prediction
    assert "Traceback" not in service.log.read_text()
