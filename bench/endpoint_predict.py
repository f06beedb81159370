"""POST /api/predict on a local endpoint against the same pickles behind a plain Flask app, as the seed's
model API serves them; then a blue/green switch and a rollback under load, counting non-2xx answers.

    python -m bench.endpoint_predict [--seconds 10] [--connections 16] [--estimators 100]

Trains the shipped Titanic script twice (two versions) on the local backend, deploys v1 to an
endpoint (amllib/endpoints), and starts the baseline: Flask's own server (threaded, as `app.run()`
in the seed's model API) loading the same model.pkl / lookup.pkl / flags.pkl and answering as it
does. Both are driven by wrk, one after the other, with the same body. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from amllib.backends import get_backend
from amllib.backends.base import RunSpec, RunStatus
from amllib.endpoints.local import LocalEndpoints
from amllib.scoring import model_folder
from amllib.settings import REPO_ROOT, Settings
from amllib.training import finish_run
from bench.common import free_port

BODY = '{"Pclass": 1, "Age": 30, "SibSp": 0, "Parch": 0, "Fare": 50, "Gender": "female", "Port": "Cherbourg"}'
# The baseline: what the seed's model API does, in a few lines (its predictor, Flask's own threaded server).
FLASK_APP = """
import pickle, sys
from flask import Flask, jsonify, request
folder, port = sys.argv[1], int(sys.argv[2])
model = pickle.load(open(folder + "/model.pkl", "rb"))
if len(sys.argv) > 3:  # the endpoint's one serving setting, to tell the server's share from the setting's
    model.n_jobs = 1
lookup = pickle.load(open(folder + "/lookup.pkl", "rb"))
flags = pickle.load(open(folder + "/flags.pkl", "rb"))
app = Flask(__name__)

@app.route("/api/predict", methods=["POST"])
def predict():
    body = request.get_json()
    try:
        row = [lookup[k][body[k]] if isinstance(body[k], str) else body[k] for k in lookup]
    except KeyError as exc:
        return jsonify({"error": f"Value: {exc} not found in model lookup"}), 400
    return jsonify(dict(zip(flags, model.predict_proba([row])[0].tolist())))

@app.route("/ready")
def ready():
    return "ok"

app.run(host="127.0.0.1", port=port, threaded=True)
"""


def wrk(url: str, seconds: int, connections: int, script: Path) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "count": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "p99": float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else float("nan"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def lua(key: str | None) -> str:
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    return f'wrk.method = "POST"\nwrk.body = \'{BODY}\'\nwrk.headers["Content-Type"] = "application/json"\n{auth}'


def trained(settings: Settings, estimators: int, count: int) -> list:
    backend = get_backend(settings)
    backend.upload_data(REPO_ROOT / "data" / "titanic", target_path="titanic")
    versions = []
    for seed in range(count):
        spec = RunSpec(
            script="scikit-titanic.py",
            experiment="bench",
            datapath="titanic",
            compute="local",
            estimators=estimators,
            args={"seed": str(seed)},
        )
        run_id = backend.submit_run(spec)
        if backend.wait_for_run(run_id, timeout=600, poll=0.5).status != RunStatus.COMPLETED:
            raise SystemExit(backend.get_log(run_id, tail=20))
        versions.append(finish_run(backend, run_id, model_name="titanic-model").model_version)
    return [backend, *versions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--estimators", type=int, default=100, help="trees of the Titanic model")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-endpoint-"))
    settings = Settings(_env_file=None, home=work / "home", training_dir=REPO_ROOT / "training")
    backend, v1, v2 = trained(settings, args.estimators, 2)
    endpoints = LocalEndpoints(settings, backend)
    flask = None
    try:
        endpoints.deploy("bench", "blue", v1, alias=None)
        endpoints.set_traffic("bench", {"blue": 100})
        info = endpoints.get("bench")
        key = endpoints.keys("bench")["primary"]
        folder = model_folder(work / "home" / "endpoints" / "bench" / "deployments")
        flask, flask_url = _flask(folder)
        plain, keyed = work / "plain.lua", work / "keyed.lua"
        plain.write_text(lua(None))
        keyed.write_text(lua(key))
        same = httpx.post(f"{flask_url}/api/predict", content=BODY, headers={"Content-Type": "application/json"})
        ours = httpx.post(f"{info.scoring_url}/api/predict", content=BODY, headers={"Authorization": f"Bearer {key}"})
        assert same.json() == ours.json(), (same.json(), ours.json())  # the same answer, or nothing is compared

        baseline = wrk(f"{flask_url}/api/predict", args.seconds, args.connections, plain)
        flask.kill()
        flask, flask_url = _flask(folder, one_core=True)
        one_core = wrk(f"{flask_url}/api/predict", args.seconds, args.connections, plain)
        measured = wrk(f"{info.scoring_url}/api/predict", args.seconds, args.connections, keyed)

        # A switch and a rollback while wrk keeps the endpoint busy.
        switched: dict[str, float] = {}
        load = threading.Thread(
            target=lambda: switched.update(
                wrk(f"{info.scoring_url}/api/predict", max(args.seconds, 4), args.connections, keyed)
            )
        )
        load.start()
        time.sleep(0.5)
        endpoints.deploy("bench", "green", v2, alias=None)
        endpoints.set_traffic("bench", {"green": 100, "blue": 0})
        endpoints.set_traffic("bench", {"blue": 100, "green": 0})
        load.join()
    finally:
        if flask is not None:
            flask.kill()
        endpoints.delete("bench")
        shutil.rmtree(work, ignore_errors=True)

    print(f"POST /api/predict, one row, {args.connections} connections, {args.seconds} s each, {args.estimators} trees")
    print(f"{'server':<34}{'requests/s':>12}{'p99 ms':>10}")
    print(f"{'Flask app (the seed model API)':<34}{baseline['rate']:>12.0f}{baseline['p99']:>10.2f}")
    print(f"{'Flask app, model on one core':<34}{one_core['rate']:>12.0f}{one_core['p99']:>10.2f}")
    print(f"{'local endpoint':<34}{measured['rate']:>12.0f}{measured['p99']:>10.2f}")
    print(f"endpoint / Flask throughput: {measured['rate'] / baseline['rate']:.2f}x")
    print(
        f"switch v1→v2 and back under load: {switched['count']:.0f} requests, "
        f"{switched['non_2xx']:.0f} non-2xx, {switched['socket_errors']:.0f} socket errors"
    )


def _flask(folder: Path, *, one_core: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-c", FLASK_APP, str(folder), str(port), *(["one-core"] if one_core else [])]
    flask = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/ready")
    return flask, url


def _wait(url: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


if __name__ == "__main__":
    main()
