"""kill -9 at random moments of every job kind, then the invariants an operator relies on.

Bounded: AZML_CHAOS_ROUNDS rounds (default 24) with a fixed seed (AZML_CHAOS_SEED), about a
minute. Each round fires uploads, runs (each with its own model file content), fetches and
callbacks at once, then kills the service at a random moment and starts it again. A second
phase kills it during retention sweeps. Afterwards:
- every accepted job ends (and no job at all is left unfinished);
- no run made two versions of a model;
- each datastore path holds exactly one of the uploads sent to it, whole;
- each fetch output folder is whole: its metadata.json names the files, and they are that version's;
- no hidden staging is left next to the outputs;
- after the sweeps, every job is either whole (row and run folder) or gone (both), and models stay.
"""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.service.conftest import Listener, Service

ROUNDS = int(os.environ.get("AZML_CHAOS_ROUNDS", "24"))
SEED = int(os.environ.get("AZML_CHAOS_SEED", "20261127"))
PATHS = ("chaos-a", "chaos-b")
OUTPUTS = ("out-0", "out-1", "out-2")
TERMINAL = {"Completed", "Failed", "Canceled"}


def payload(rng: random.Random, tag: str) -> dict[str, bytes]:
    """A dataset of 1–40 files, up to 256 KiB each, every byte tied to its tag."""
    files = {}
    for index in range(rng.randint(1, 40)):
        size = rng.choice((10, 1000, 64 * 1024, 256 * 1024))
        files[f"part-{index:02d}/{tag}.csv"] = (f"{tag},{index}\n".encode() * (size // 8 + 1))[:size]
    return files


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Chaos:
    """The requests of one test, what was accepted, and what each upload sent."""

    def __init__(self, service: Service, listener: Listener) -> None:
        self.service = service
        self.hook = f"http://127.0.0.1:{listener.port}/hook"
        self.accepted: dict[str, str] = {}  # job id → the route that reads it
        self.sent: dict[str, list[dict[str, bytes]]] = {path: [] for path in PATHS}

    def _post(self, route: str, reader: str, **kwargs: object) -> None:
        try:
            with self.service.client() as client:
                answer = client.post(route, timeout=30, **kwargs)
        except httpx.HTTPError:
            return  # cut by the kill: not accepted (or accepted and answered too late: found at the end)
        if answer.status_code in (200, 202):
            job_id = answer.json()["id"]
            self.accepted[job_id] = f"{reader}/{job_id}"

    def upload(self, rng: random.Random, tag: str) -> None:
        path = rng.choice(PATHS)
        files = payload(rng, tag)
        self.sent[path].append(files)
        params = {"path": path, "callback_url": self.hook} if rng.random() < 0.5 else {"path": path}
        self._post(
            "/data", "/data", params=params, content=tar_of(files), headers={"Content-Type": "application/x-tar"}
        )

    def run(self, rng: random.Random, tag: str) -> None:
        body = {"datapath": rng.choice(PATHS), "args": {"flavour": tag}, "callback_url": self.hook}
        self._post("/runs", "/runs", json=body)

    def fetch(self, rng: random.Random, tag: str) -> None:
        body = {"output_path": rng.choice(OUTPUTS), "use_best": rng.random() < 0.5, "callback_url": self.hook}
        self._post("/models/fetch", "/models/fetch", json=body)


def all_jobs(home: Path) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(home / "jobs.sqlite") as db:
        return db.execute("SELECT id, status, callback_url, callback_status FROM jobs").fetchall()


def wait_all_ended(home: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        left = [job for job in all_jobs(home) if job[1] not in TERMINAL or (job[2] and job[3] is None)]
        if not left:
            return
        assert time.time() < deadline, f"jobs never ended (or never called back): {left[:5]}"
        time.sleep(0.3)


def check_invariants(service: Service, chaos: Chaos) -> None:
    home, outputs = Path(service.env["AZML_HOME"]), Path(service.env["AZML_OUTPUT_ROOT"])
    with service.client() as client:
        for job_id, route in chaos.accepted.items():
            answer = client.get(route)
            assert answer.status_code == 200, (job_id, answer.text)
            assert answer.json()["status"] in TERMINAL, answer.json()
        versions = client.get("/models/svc-model/versions").json()["versions"]
    runs = [v["run_id"] for v in versions]
    assert len(runs) == len(set(runs)), f"a run registered twice: {sorted(runs)}"
    assert versions, "no run completed in all those rounds"
    registry = {v["version"]: tree(home / "models" / "svc-model" / str(v["version"]) / "outputs") for v in versions}

    for path in PATHS:
        folder = home / "datastore" / path
        if folder.exists():
            held = tree(folder)
            assert held in chaos.sent[path], f"{path} holds a dataset nobody sent ({len(held)} files)"

    for entry in outputs.iterdir() if outputs.exists() else ():
        assert not entry.name.startswith("."), f"staging left beside the outputs: {entry.name}"
        metadata = json.loads((entry / "metadata.json").read_text())
        files = {rel: (entry / rel).read_bytes() for rel in metadata["files"]}
        assert files == registry[metadata["version"]], f"{entry.name} mixes versions"


def test_kill9_at_random_moments_of_every_job_kind(make_service) -> None:
    rng = random.Random(SEED)
    listener = Listener()
    service = make_service(
        AZML_CALLBACK_HOSTS=f"127.0.0.1:{listener.port}",
        AZML_RUN_IMPORT_SECONDS="0.3",
        AZML_SCRIPT="aml_v1_logging.py",
    )
    chaos = Chaos(service, listener)
    try:
        with ThreadPoolExecutor(8) as pool:
            for round_ in range(ROUNDS):
                actions = [rng.choice((chaos.upload, chaos.run, chaos.fetch)) for _ in range(rng.randint(2, 6))]
                if round_ < 2:
                    actions = [chaos.upload, chaos.upload]  # data first, so runs have something to train on
                for index, action in enumerate(actions):
                    pool.submit(action, random.Random(rng.random()), f"r{round_}x{index}")
                time.sleep(rng.uniform(0.05, 1.5))
                service.kill9()
                service.start()
        wait_all_ended(Path(service.env["AZML_HOME"]))
        check_invariants(service, chaos)
        print(f"chaos: {ROUNDS} kills, {len(chaos.accepted)} jobs accepted, by outcome:", _outcomes(service))

        # Phase 2: kills during retention sweeps. Whatever ended is old enough to go.
        service.stop()
        service.env.update({"AZML_RETENTION_DAYS": f"{1 / 86400:.8f}", "AZML_RETENTION_SWEEP_SECONDS": "0.05"})
        home = Path(service.env["AZML_HOME"])
        for _ in range(6):
            service.start()
            time.sleep(rng.uniform(0.0, 0.4))
            service.kill9()
            for job_id, *_ in all_jobs(home):  # whatever the kill left: each job whole or gone
                run_id = _run_id(home, job_id)
                if run_id:
                    assert (home / "runs" / run_id / "run.json").is_file(), f"{job_id} kept but its run is gone"
        service.start()
        deadline = time.time() + 30
        while all_jobs(home) and time.time() < deadline:
            time.sleep(0.2)
        assert all_jobs(home) == []
        assert not [p.name for p in (home / "runs").iterdir() if not p.name.startswith(".")], "run folders left"
        assert not list((home / "runs").glob(".trash-*"))
        with service.client() as client:
            for version in client.get("/models/svc-model/versions").json()["versions"]:
                fetched = client.post(
                    "/models/fetch", params={"wait": 30}, json={"version": version["version"], "output_path": "z"}
                )
                assert fetched.json()["status"] == "Completed", fetched.text
    finally:
        listener.close()


def _run_id(home: Path, job_id: str) -> str | None:
    with sqlite3.connect(home / "jobs.sqlite") as db:
        row = db.execute("SELECT backend_run_id, status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return row[0] if row and row[1] in TERMINAL else None


def _outcomes(service: Service) -> dict[str, int]:
    with sqlite3.connect(Path(service.env["AZML_HOME"]) / "jobs.sqlite") as db:
        rows = db.execute("SELECT kind, status, COALESCE(error_kind, ''), COUNT(*) FROM jobs GROUP BY 1, 2, 3")
        return {f"{kind} {status} {why}".strip(): count for kind, status, why, count in rows}
