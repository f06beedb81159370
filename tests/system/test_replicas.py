"""Several replicas on one PostgreSQL: kill -9 one mid-burst, and the feed seen from any replica.

Three uvicorn processes on different ports share one database (a throw-away server, or
AZML_TEST_DATABASE_URL) and one AZML_HOME (the local backend's compute is this machine,
README "Running several replicas"). Seeded (AZML_REPLICAS_SEED); about two minutes.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.service.conftest import FULL_TOKEN, Listener, Service, service_env, tar_bytes
from tests.system.test_chaos import payload, tar_of

SEED = int(os.environ.get("AZML_REPLICAS_SEED", "20261201"))
LEASE = 3.0
TERMINAL = ("Completed", "Failed", "Canceled")
REQUESTS = 300
TAR = {"Content-Type": "application/x-tar"}


def start_replicas(tmp_path: Path, db_url: str, count: int, **extra: str) -> list[Service]:
    env = service_env(tmp_path, AZML_DB_URL=db_url, AZML_LEASE_SECONDS=str(LEASE), **extra)
    replicas = []
    for index in range(count):
        folder = tmp_path / f"replica-{index}"
        folder.mkdir()
        replica = Service(folder, dict(env))
        replica.start()
        replicas.append(replica)
    return replicas


def rows(db_url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(db_url, autocommit=True) as db:
        return db.execute(sql, params).fetchall()


class Burst:
    """Requests spread over the replicas; a POST cut by a kill is sent again to another with its key."""

    def __init__(self, replicas: list[Service], hook: str) -> None:
        self.replicas = replicas
        self.hook = hook
        self.accepted: dict[str, str] = {}  # job id → its route
        self.keys: dict[str, str] = {}  # Idempotency-Key → job id
        self.run_bodies: dict[str, dict] = {}  # Idempotency-Key → the POST /runs body sent with it
        self.lock = threading.Lock()

    def post(self, rng: random.Random, route: str, reader: str, *, key: str | None = None, **kwargs: object) -> None:
        key = key or uuid.uuid4().hex
        headers = {"Idempotency-Key": key, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        for replica in rng.sample(self.replicas, len(self.replicas)):
            try:
                with replica.client() as client:
                    answer = client.post(route, headers=headers, timeout=30, **kwargs)
            except httpx.HTTPError:
                continue  # that replica was killed: the same request, with its key, to the next one
            if answer.status_code in (200, 202):
                job_id = answer.json()["id"]
                with self.lock:
                    assert self.keys.setdefault(key, job_id) == job_id, "one key made two jobs"
                    self.accepted[job_id] = f"{reader}/{job_id}"
            else:
                assert answer.status_code in (404, 409, 422), answer.text  # e.g. nothing to fetch yet
            return

    def upload(self, rng: random.Random, tag: str) -> None:
        files = payload(rng, tag)
        params = {"path": rng.choice(("rep-a", "rep-b")), "callback_url": self.hook}
        headers = {"Content-Type": "application/x-tar"}
        self.post(rng, "/data", "/data", params=params, content=tar_of(files), headers=headers)

    def run(self, rng: random.Random, tag: str) -> None:
        body = {"datapath": rng.choice(("rep-a", "rep-b")), "args": {"flavour": tag}, "callback_url": self.hook}
        key = uuid.uuid4().hex
        with self.lock:
            self.run_bodies[key] = body
        self.post(rng, "/runs", "/runs", key=key, json=body)

    def fetch(self, rng: random.Random, tag: str) -> None:
        body = {"output_path": f"out-{tag}", "callback_url": self.hook}
        self.post(rng, "/models/fetch", "/models/fetch", json=body)

    def repeat(self, rng: random.Random, tag: str) -> None:
        """An idempotent repeat of an earlier POST /runs, sent to any replica: the same job, no new one."""
        with self.lock:
            earlier = [key for key in self.run_bodies if key in self.keys]
        if earlier:
            key = rng.choice(earlier)
            for replica in rng.sample(self.replicas, len(self.replicas)):
                try:
                    with replica.client() as client:
                        answer = client.post("/runs", headers={"Idempotency-Key": key}, json=self.run_bodies[key])
                except httpx.HTTPError:
                    continue
                assert answer.status_code in (200, 202), answer.text
                assert answer.json()["id"] == self.keys[key], "a repeat on another replica made a second job"
                return

    def cancel(self, rng: random.Random, tag: str) -> None:
        with self.lock:
            runs = [job for job, route in self.accepted.items() if route.startswith("/runs/")]
        if runs:
            self.read_or_cancel(rng, f"/runs/{rng.choice(runs)}/cancel", post=True)

    def read(self, rng: random.Random, tag: str) -> None:
        with self.lock:
            routes = list(self.accepted.values())
        self.read_or_cancel(rng, rng.choice(routes) if routes else "/runs")

    def read_or_cancel(self, rng: random.Random, route: str, *, post: bool = False) -> None:
        try:
            with rng.choice(self.replicas).client() as client:
                answer = client.post(route) if post else client.get(route)
        except httpx.HTTPError:
            return
        assert answer.status_code in ((202, 409) if post else (200,)), (route, answer.status_code, answer.text)


@pytest.mark.timeout(600)
def test_three_replicas_survive_kill9_of_one_mid_burst_twice(tmp_path: Path, postgres_url: str) -> None:
    rng = random.Random(SEED)
    listener = Listener()
    replicas = start_replicas(
        tmp_path, postgres_url, 3, AZML_CALLBACK_HOSTS=f"127.0.0.1:{listener.port}", AZML_RUN_IMPORT_SECONDS="0.5"
    )
    burst = Burst(replicas, f"http://127.0.0.1:{listener.port}/hook")
    try:
        for path in ("rep-a", "rep-b"):  # data first, so runs have something to train on
            with replicas[0].client() as client:
                upload = client.post(
                    "/data", params={"path": path, "wait": 30}, content=tar_bytes({"a.csv": b"x"}), headers=TAR
                )
                assert upload.json()["status"] == "Completed", upload.text
        kinds = [burst.upload] * 25 + [burst.run] * 12 + [burst.fetch] * 8 + [burst.cancel] * 5
        kinds += [burst.read] * 40 + [burst.repeat] * 10
        kill_at = sorted(rng.sample(range(40, REQUESTS - 40), 2))
        killed: list[tuple[int, float]] = []  # (pid, when)
        with ThreadPoolExecutor(8) as pool:
            sent = []
            for index in range(REQUESTS):
                sent.append(pool.submit(rng.choice(kinds), random.Random(rng.random()), f"b{index}"))
                if index in kill_at:
                    victim = replicas[kill_at.index(index)]
                    killed.append((victim.proc.pid, time.monotonic()))
                    victim.kill9()
                    victim.start()  # a new process: a new replica id; the dead one's jobs go to whoever claims
                time.sleep(rng.uniform(0.0, 0.04))
        for request in sent:
            request.result()  # a request's own assertion (a 500, one key making two jobs) fails the test
        # No job stays leased by a dead replica past the lease time.
        time.sleep(max(0.0, killed[-1][1] + 2.5 * LEASE - time.monotonic()))
        for pid, _ in killed:
            orphans = rows(
                postgres_url,
                "SELECT id, status FROM jobs WHERE owner LIKE %s AND status NOT IN ('Completed', 'Failed', 'Canceled')",
                f"%:{pid}:%",
            )
            assert orphans == [], f"jobs still leased to killed replica {pid}: {orphans[:5]}"
        wait_all_ended(postgres_url)
        check(burst, replicas, listener, postgres_url)
    finally:
        for replica in replicas:
            replica.stop()
        listener.close()


def wait_all_ended(db_url: str, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        left = rows(
            db_url,
            "SELECT id, status, owner FROM jobs WHERE status NOT IN ('Completed', 'Failed', 'Canceled')"
            " OR (callback_url IS NOT NULL AND (callback_status IS NULL OR callback_status = 'sending'))",
        )
        if not left:
            return
        assert time.time() < deadline, f"jobs never ended (or never called back): {left[:5]}"
        time.sleep(0.5)


def check(burst: Burst, replicas: list[Service], listener: Listener, db_url: str) -> None:
    home = Path(replicas[0].env["AZML_HOME"])
    assert len(burst.accepted) > 50, burst.accepted
    with replicas[1].client() as client:
        for job_id, route in burst.accepted.items():
            answer = client.get(route)
            assert answer.status_code == 200 and answer.json()["status"] in TERMINAL, (job_id, answer.text)
        versions = client.get("/models/svc-model/versions").json()["versions"]
    # Exactly one backend run per run job, and one model version per run.
    by_job = Counter(
        json.loads((folder / "run.json").read_text()).get("tags", {}).get("job_id")
        for folder in (home / "runs").iterdir()
        if not folder.name.startswith(".") and (folder / "run.json").is_file()  # not a killed submit's staging
    )
    run_jobs = rows(db_url, "SELECT id, backend_run_id, status FROM jobs WHERE kind = 'run'")
    for job_id, run_id, status in run_jobs:
        assert by_job[job_id] == (1 if run_id else 0), (job_id, status, by_job[job_id])
    made = [version["run_id"] for version in versions]
    assert len(made) == len(set(made)), f"a run registered twice: {sorted(made)}"
    completed = {run_id for _, run_id, status in run_jobs if status == "Completed"}
    assert completed <= set(made) and completed, "a completed run without its model version"
    # Every callback delivered once, or recorded as failed.
    delivered = Counter(json.loads(body)["id"] for _, body in listener.received)
    for job_id, status in rows(db_url, "SELECT id, callback_status FROM jobs WHERE callback_url IS NOT NULL"):
        assert delivered[job_id] <= 1, f"{job_id} called back {delivered[job_id]} times"
        assert delivered[job_id] == 1 or status.startswith("failed"), (job_id, status)
    print(
        f"replicas: {len(burst.accepted)} jobs accepted; callbacks lost with a killed replica:",
        sum(1 for job in burst.accepted if delivered[job] == 0),
    )


def read_events(replica: Service, *, until: int, last_event_id: int | None = None) -> list[tuple[int, str]]:
    """(id, event) of the stream's events until the one with id `until` (ping comments skipped)."""
    headers = {"Authorization": f"Bearer {FULL_TOKEN}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    seen: list[tuple[int, str]] = []
    with httpx.stream(
        "GET", replica.url + "/events", params={} if last_event_id else {"after": 0}, headers=headers, timeout=30
    ) as stream:
        event_id, name = None, None
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("event: "):
                name = line[7:]
            elif line == "" and event_id is not None:
                if name != "reset":
                    seen.append((event_id, name or ""))
                if event_id >= until:
                    return seen
                event_id, name = None, None
    return seen


@pytest.mark.timeout(180)
def test_a_stream_on_one_replica_sees_every_change_made_through_the_others_and_resumes_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    a, b, c = start_replicas(tmp_path, postgres_url, 3, AZML_RUN_IMPORT_SECONDS="0")
    try:
        # Changes through A and B, in parallel.
        with ThreadPoolExecutor(6) as pool, a.client() as through_a, b.client() as through_b:
            uploads = [
                pool.submit(
                    (through_a if index % 2 else through_b).post,
                    "/data",
                    params={"path": f"ev-{index % 3}", "wait": 30},
                    content=tar_bytes({f"f{index}.csv": b"1,2\n"}),
                    headers=TAR,
                )
                for index in range(30)
            ]
            for done in uploads:
                assert done.result().json().get("status") == "Completed", done.result().text
        every = [(seq, topic) for seq, topic in rows(postgres_url, "SELECT seq, topic FROM events ORDER BY seq")]
        assert len(every) >= 90  # each upload: Queued, Running, Completed
        assert read_events(c, until=every[-1][0]) == every  # all of them, in order, none twice, none missing
        # Live: a change made through A reaches a stream held on C within half a second.
        latencies = []
        for index in range(5):
            newest = rows(postgres_url, "SELECT MAX(seq) FROM events")[0][0]
            got: list[float] = []

            def watch(start: int = newest, got: list[float] = got) -> None:
                read_events(c, until=start + 1, last_event_id=start)
                got.append(time.monotonic())

            watcher = threading.Thread(target=watch)
            watcher.start()
            time.sleep(0.5)  # the stream is open and idle
            sent = time.monotonic()
            with a.client() as client:
                client.post("/data", params={"path": f"live-{index}"}, content=tar_bytes({"x.csv": b"1"}), headers=TAR)
            watcher.join(timeout=10)
            assert got, "the change never reached the other replica's stream"
            latencies.append(got[0] - sent)
        assert max(latencies) < 1.5, latencies  # the goal is 0.5 s (bench/replicas.py measures it); slack for CI
        # Resume on B from the middle with Last-Event-ID: exactly the rest.
        every = [(seq, topic) for seq, topic in rows(postgres_url, "SELECT seq, topic FROM events ORDER BY seq")]
        middle = every[len(every) // 2][0]
        assert read_events(b, until=every[-1][0], last_event_id=middle) == [e for e in every if e[0] > middle]
    finally:
        for replica in (a, b, c):
            replica.stop()
