"""The job store's contract, on SQLite and on PostgreSQL (service/core/store.py and its two implementations).

Every test here runs on both databases, the way the backend contract suite runs on three
backends. "Two replicas" are two store objects on one database, each with its own
connections and writer threads, writing at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
import pytest

from amllib.backends.base import RunStatus
from amllib.errors import ConfigError
from service.core.events import EventFeed
from service.core.jobs import TERMINAL_NAMES, Jobs
from service.core.store import EVENT_CHANNEL, Job, JobStore, LeaseLost, Order, Tx
from service.core.store_postgres import POSTGRES, PostgresStore
from service.core.store_sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    return request.getfixturevalue("postgres_url")


def open_store(url: str) -> JobStore:
    if url.startswith("sqlite:///"):
        return SqliteStore(Path(url.removeprefix("sqlite:///")))
    return PostgresStore(url)


@pytest.fixture
def stores(store_url: str) -> Iterator[list[JobStore]]:
    """Two stores on one database: two replicas."""
    opened = [open_store(store_url), open_store(store_url)]
    yield opened
    for store in opened:
        store.close()


def new_job(job_id: str, *, key: str | None = None, status: str = RunStatus.QUEUED) -> Job:
    spec = {"experiment": "exp", "script": "train.py", "created_by": "ci", "notify": None}
    return Job(id=job_id, kind="run", status=status, spec=spec, created_at=time.time(), idempotency_key=key)


def jobs_of(store: JobStore, replica: str, lease: float = 30.0) -> Jobs:
    return Jobs(
        store,
        render=lambda job: {"id": job.id, "status": job.status},
        feed=EventFeed(store),
        replica=replica,
        lease_seconds=lease,
    )


def test_a_job_is_stored_found_and_paged(stores: list[JobStore]) -> None:
    store = stores[0]

    async def scenario() -> None:
        jobs = jobs_of(store, "a")
        for index in range(5):
            await jobs.create(new_job(f"run_{index}"))
        await jobs.update("run_3", backend_run_id="titanic_123", result={"data_version": "v1"})

    asyncio.run(scenario())
    assert store.get("run_2").spec["script"] == "train.py"
    assert store.get("run_2", kind="data") is None
    assert [job.id for job in store.page("run", limit=3)] == ["run_4", "run_3", "run_2"]
    assert [job.id for job in store.page("run", search="titanic_1")] == ["run_3"]
    assert [job.id for job in store.page("run", search="exp", limit=2)] == ["run_4", "run_3"]
    assert [job.id for job in store.page("run", ids=["titanic_123", "run_0"])] == ["run_3", "run_0"]
    assert [job.id for job in store.page("run", data_version="v1")] == ["run_3"]
    assert store.by_backend_run("titanic_123").id == "run_3"

    async def named() -> None:
        jobs = jobs_of(store, "a")
        for job_id, experiment in (("run_q", 'été "quoted" \\ back'), ("run_x", "svc17x")):
            job = new_job(job_id)
            job.spec["experiment"] = experiment
            await jobs.create(job)
        await jobs.update("run_x", backend_run_id="svc17x_1")

    asyncio.run(named())
    assert [job.id for job in store.page("run", search='été "quoted" \\ back')] == ["run_q"]  # as JSON escapes it
    assert [job.id for job in store.page("run", search="été")] == []  # a field equal to it, not containing it
    assert [job.id for job in store.page("run", search="svc_17")] == []  # a prefix of the characters as given
    assert [job.id for job in store.page("run", search="svc17")] == ["run_x"]
    assert store.counts() == {("run", "Queued"): 7}
    assert len(store.unfinished(TERMINAL_NAMES)) == 7


ORDERS = [
    Order("created"),
    Order("created", ascending=True),
    Order("started"),
    Order("started", ascending=True),
    Order("duration"),
    Order("duration", ascending=True),
    Order("metric", metric="val/acc top-1 [\\x]"),
    Order("metric", metric="val/acc top-1 [\\x]", ascending=True),
]


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: f"{o.key}-{'asc' if o.ascending else 'desc'}")
def test_pages_in_any_order_hold_every_job_once(stores: list[JobStore], order: Order) -> None:
    """Ties, missing values (running runs, text metrics, no metrics) and every page boundary: read page by
    page with the cursor a page ends on, the jobs come in the order a sort of the rows gives, each once."""
    store, metric = stores[0], "val/acc top-1 [\\x]"
    values: list[object] = [0.9, 0.5, 0.9, None, "n/a", 0.5, True, 1, 0.9, None, -2.5]

    def fill(tx: Tx) -> None:
        for index, value in enumerate(values):
            job = new_job(f"run_{index:02}")
            job.created_at = 1000.0 + index
            job.started_at = None if index == 3 else 1000.0 + index % 4
            job.finished_at = None if index % 5 == 0 else 1010.0 + index % 3
            job.result = {"metrics": {} if value is None else {metric: value, "other": 1}}
            tx.insert_job(job)

    asyncio.run(store.write(fill))
    every = store.page("run", limit=100)
    sign = 1 if order.ascending else -1

    def key(job: Job) -> float | None:
        if order.key == "created":
            return job.seq
        if order.key == "started":
            return job.started_at if job.started_at is not None else job.created_at
        if order.key == "duration":
            return None if job.finished_at is None or job.started_at is None else job.finished_at - job.started_at
        value = job.result["metrics"].get(metric)
        return value if type(value) in (int, float) else None

    expected = sorted(every, key=lambda job: (key(job) is None, sign * (key(job) or 0), sign * job.seq))
    for size in (1, 2, 3, 100):
        seen, after = [], None
        while True:
            chunk = store.page("run", limit=size, order=order, after=after)
            seen += [job.id for job in chunk]
            if len(chunk) < size:
                break
            after = (order.value(chunk[-1]), chunk[-1].seq)
        assert seen == [job.id for job in expected], size


def test_the_same_idempotency_key_on_two_replicas_at_once_makes_one_job(stores: list[JobStore]) -> None:
    async def scenario() -> list[tuple[Job, bool]]:
        replicas = [jobs_of(store, f"r{index}") for index, store in enumerate(stores)]
        attempts = [replicas[i % 2].create(new_job(f"run_{i}", key="same-key")) for i in range(20)]
        return await asyncio.gather(*attempts)

    outcomes = asyncio.run(scenario())
    assert sum(created for _, created in outcomes) == 1
    assert len({job.id for job, _ in outcomes}) == 1
    assert stores[0].counts() == {("run", "Queued"): 1}


def test_transitions_only_move_forward_under_concurrent_writers(stores: list[JobStore]) -> None:
    """Two replicas race to end the same jobs differently: each job ends once, and nothing moves back."""

    async def scenario() -> list[Job | None]:
        a, b = jobs_of(stores[0], "a"), jobs_of(stores[1], "b")
        for index in range(10):
            await a.create(new_job(f"run_{index}"))
        moves = []
        for index in range(10):
            moves += [
                a.transition(f"run_{index}", RunStatus.COMPLETED),
                b.transition(f"run_{index}", RunStatus.FAILED, error="x"),
                a.transition(f"run_{index}", RunStatus.RUNNING),
                b.transition(f"run_{index}", RunStatus.QUEUED),
            ]
        return await asyncio.gather(*moves)

    results = asyncio.run(scenario())
    for index in range(10):
        ended = [r for r in results if r is not None and r.id == f"run_{index}" and r.status in TERMINAL_NAMES]
        assert len(ended) == 1, ended
        assert stores[0].get(f"run_{index}").status == ended[0].status
        history = [e for e in stores[0].events_after(0, job_id=f"run_{index}")]
        statuses = [__import__("json").loads(data)["status"] for _, _, data in history]
        assert statuses[-1] == ended[0].status and statuses.count(ended[0].status) == 1


def test_a_reader_following_the_feed_sees_every_event_once_in_order_while_two_replicas_write(
    stores: list[JobStore],
) -> None:
    """Event ids commit in order: a reader that saw id n never finds a smaller one appear later (no gap)."""
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:
        last = 0
        while True:
            finished = done.is_set()
            rows = stores[1].events_after(last, limit=10_000)
            seen.extend(seq for seq, _, _ in rows)
            last = rows[-1][0] if rows else last
            if finished and not rows:
                return

    async def scenario() -> None:
        replicas = [jobs_of(store, f"r{index}") for index, store in enumerate(stores)]
        await asyncio.gather(*(replicas[i % 2].create(new_job(f"run_{i}")) for i in range(200)))
        await asyncio.gather(*(replicas[i % 2].update(f"run_{i}", result={"n": i}) for i in range(200)))

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        asyncio.run(scenario())
    finally:
        done.set()
        reader.join(timeout=30)
    every = [seq for seq, _, _ in stores[0].events_after(0, limit=10_000)]
    assert len(every) == 400
    assert seen == every  # nothing missed, nothing twice, in order


def test_a_lease_is_renewed_lost_and_taken_over(stores: list[JobStore]) -> None:
    async def scenario() -> None:
        a, b = jobs_of(stores[0], "a", lease=0.5), jobs_of(stores[1], "b", lease=0.5)
        await a.create(new_job("run_1"))
        claim = dict(terminal=TERMINAL_NAMES, lease=0.5, everything=False, limit=10)
        assert await stores[1].write(lambda tx: tx.claim("b", **claim)) == []  # a holds it
        assert await stores[0].write(lambda tx: tx.renew("a", terminal=TERMINAL_NAMES, lease=0.5)) == {"run_1"}
        await asyncio.sleep(0.7)  # a stops renewing (it died, or paused)
        taken = await stores[1].write(lambda tx: tx.claim("b", **claim))
        assert [job.id for job in taken] == ["run_1"] and taken[0].owner == "b"
        assert await stores[0].write(lambda tx: tx.renew("a", terminal=TERMINAL_NAMES, lease=0.5)) == set()
        with pytest.raises(LeaseLost):
            await a.transition("run_1", RunStatus.RUNNING, as_owner=True)
        assert (await b.transition("run_1", RunStatus.RUNNING, as_owner=True)).status == RunStatus.RUNNING
        await b.transition("run_1", RunStatus.COMPLETED, as_owner=True)
        await asyncio.sleep(0.7)
        assert await stores[0].write(lambda tx: tx.claim("a", **claim)) == []  # ended and owes nothing

    asyncio.run(scenario())


def test_an_ended_job_owing_its_callback_is_taken_over_too(stores: list[JobStore]) -> None:
    async def scenario() -> None:
        a = jobs_of(stores[0], "a", lease=0.3)
        job = new_job("run_1")
        job.callback_url = "http://hooks.example/x"
        await a.create(job)
        await a.transition("run_1", RunStatus.COMPLETED)
        await asyncio.sleep(0.5)
        claim = dict(terminal=TERMINAL_NAMES, lease=0.5, everything=False, limit=10)
        assert [j.id for j in await stores[1].write(lambda tx: tx.claim("b", **claim))] == ["run_1"]
        await a.update("run_1", callback_status="delivered")
        await asyncio.sleep(0.7)
        assert await stores[1].write(lambda tx: tx.claim("c", **claim)) == []

    asyncio.run(scenario())


def test_one_leader_at_a_time_and_another_when_it_stops(stores: list[JobStore]) -> None:
    async def scenario() -> None:
        assert await stores[0].write(lambda tx: tx.lead("sweep", "a", lease=0.4))
        assert not await stores[1].write(lambda tx: tx.lead("sweep", "b", lease=0.4))
        assert await stores[1].write(lambda tx: tx.lead("import", "b", lease=0.4))  # another task, another lease
        assert await stores[0].write(lambda tx: tx.lead("sweep", "a", lease=0.4))  # renewed
        await asyncio.sleep(0.6)
        assert await stores[1].write(lambda tx: tx.lead("sweep", "b", lease=0.4))
        assert not await stores[0].write(lambda tx: tx.lead("sweep", "a", lease=0.4))

    asyncio.run(scenario())


def test_revoked_sessions_are_seen_by_every_replica(stores: list[JobStore]) -> None:
    asyncio.run(stores[0].revoke_session("sid-1", expires=time.time() + 60))
    asyncio.run(stores[0].revoke_session("sid-1", expires=time.time() + 120))  # again: no duplicate-key error
    assert set(stores[1].revoked_sessions(now=time.time())) == {"sid-1"}


def test_a_schema_newer_than_this_code_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    stamp = "UPDATE alembic_version SET version_num = '9999'"
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as db:
            db.execute(stamp)
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as db:
            db.execute(stamp)
    with pytest.raises(ConfigError, match="newer than this service knows"):
        open_store(store_url)


def test_a_sqlite_store_made_before_revisions_were_kept_is_adopted_with_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    with sqlite3.connect(path) as db:  # the schema as the service created it before Alembic
        db.executescript(
            "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
            " status TEXT NOT NULL, idempotency_key TEXT UNIQUE, request_hash TEXT, spec TEXT NOT NULL,"
            " result TEXT NOT NULL DEFAULT '{}', error TEXT, error_kind TEXT, backend_run_id TEXT, callback_url TEXT,"
            " callback_status TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,"
            " started_at REAL, finished_at REAL);"
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, job_id TEXT,"
            " created_at REAL NOT NULL, data TEXT NOT NULL);"
            "INSERT INTO jobs (id, kind, status, spec, created_at) VALUES ('run_old', 'run', 'Running', '{}', 1.0);"
        )
    store = SqliteStore(path)
    try:
        assert store.get("run_old").status == "Running" and store.get("run_old").owner is None
        assert [job.id for job in store.unfinished(TERMINAL_NAMES)] == ["run_old"]
    finally:
        store.close()


def listening_pid(url: str, *, other_than: int | None = None, timeout: float = 15.0) -> int:
    """The server process of a store's LISTEN connection, once there is one (not `other_than`)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s"
            found = [pid for (pid,) in admin.execute(sql, (f"LISTEN {EVENT_CHANNEL}",)) if pid != other_than]
            if found:
                return found[0]
            time.sleep(0.05)
    raise AssertionError("no store is listening")


def test_a_change_on_one_replica_is_heard_on_another_within_half_a_second(postgres_url: str) -> None:
    writer, listener = PostgresStore(postgres_url), PostgresStore(postgres_url)
    heard = threading.Event()
    listener.on_change(heard.set)
    try:
        listening_pid(postgres_url)
        time.sleep(0.2)  # past the wake-up the listener gives itself on connecting
        heard.clear()
        started = time.monotonic()
        asyncio.run(jobs_of(writer, "a").create(new_job("run_1")))
        assert heard.wait(2.0)
        assert time.monotonic() - started < 0.5
    finally:
        writer.close()
        listener.close()


def test_the_listener_comes_back_when_its_connection_is_cut(postgres_url: str) -> None:
    """A database restart or a proxy's idle cut-off ends the LISTEN connection: the replica listens again
    (and wakes its streams once, for whatever was committed while nobody listened)."""
    writer, listener = PostgresStore(postgres_url), PostgresStore(postgres_url)
    heard = threading.Event()
    listener.on_change(heard.set)
    try:
        first = listening_pid(postgres_url)
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        listening_pid(postgres_url, other_than=first)
        time.sleep(0.2)
        heard.clear()
        asyncio.run(jobs_of(writer, "a").create(new_job("run_1")))
        assert heard.wait(5.0), "a change made after the reconnect was not heard"
    finally:
        writer.close()
        listener.close()


def test_the_sqlite_store_writes_with_full_sync_by_default(tmp_path: Path) -> None:
    """A job answered 202 is on disk even if the machine loses power right after (not only a process kill)."""
    for setting, expected in ((None, 2), ("NORMAL", 1)):
        store = SqliteStore(tmp_path / f"{setting}.sqlite", **({"synchronous": setting} if setting else {}))
        mode = asyncio.run(store.write(lambda tx: tx.db.execute("PRAGMA synchronous").fetchone()[0]))
        store.close()
        assert mode == expected, setting  # 2 = FULL, 1 = NORMAL


def test_failed_sign_ins_are_counted_across_replicas_and_the_lockout_doubles(stores: list[JobStore]) -> None:
    async def scenario() -> list[float]:
        outcomes = []
        for index in range(13):  # alternating replicas: 10 free failures in all, then 1 s, then 2 s
            store = stores[index % 2]
            outcomes.append(await store.auth_failed("10.0.0.9", free=10, window=60, max_lockout=60))
        return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes == [0.0] * 10 + [1.0, 2.0, 4.0]  # seconds of lockout
    for store in stores:
        left = store.lockouts()
        assert set(left) == {"10.0.0.9"} and 0 < left["10.0.0.9"] <= 4.0
    assert asyncio.run(stores[0].auth_failed("10.0.0.10", free=10, window=60, max_lockout=60)) == 0.0


def test_a_sign_out_on_one_replica_is_refused_by_another(stores: list[JobStore], tmp_path: Path, monkeypatch) -> None:
    from service.http import session

    monkeypatch.setattr(session, "REFRESH", 0.0)
    signers = [session.SessionSigner(tmp_path, full={"tok": "ci"}, read={}) for _ in stores]
    for signer, store in zip(signers, stores, strict=True):
        signer.attach(store)
    cookie = signers[0].issue("tok")
    assert signers[1].check(cookie) is not None
    asyncio.run(signers[0].revoke(signers[0].check(cookie)))
    assert signers[1].check(cookie) is None


def test_revocations_are_forgotten_once_their_cookies_have_expired(
    stores: list[JobStore], tmp_path: Path, monkeypatch
) -> None:
    """A long-running replica holds only the revocations of cookies that could still be sent."""
    from service.http import session

    monkeypatch.setattr(session, "REFRESH", 0.0)
    signer = session.SessionSigner(tmp_path, full={"tok": "ci"}, read={})
    signer.attach(stores[0])
    cookies = [signer.issue("tok") for _ in range(5)]
    for cookie in cookies:
        asyncio.run(signer.revoke(signer.check(cookie)))
    assert all(signer.check(cookie) is None for cookie in cookies)
    assert len(signer._revoked) == 5
    later = time.time() + session.LIFETIME + 60
    monkeypatch.setattr(session.time, "time", lambda: later)
    signer.revoked("any")  # a refresh
    assert signer._revoked == {}
    fresh = signer.issue("tok")
    asyncio.run(signer.revoke(signer.check(fresh)))
    assert signer.check(fresh) is None and len(signer._revoked) == 1


def test_a_local_backend_on_postgresql_says_replicas_must_share_one_machine(
    postgres_url: str, make_app, caplog: pytest.LogCaptureFixture
) -> None:
    """Local training runs where the service runs: replicas on other machines could not see its runs."""
    service_log = logging.getLogger("service")  # it does not propagate (service/observe/logs.py)
    service_log.addHandler(caplog.handler)
    try:
        client = make_app(db_url=postgres_url)
        assert client.get("/healthz").status_code == 200
        make_app()  # SQLite: no such warning
    finally:
        service_log.removeHandler(caplog.handler)
    warned = [r.getMessage() for r in caplog.records if "replicas must run on this one machine" in r.getMessage()]
    assert len(warned) == 1 and "AZML_HOME" in warned[0]


def test_the_tests_use_a_server_named_by_azml_test_database_url_as_it_is(postgres_server: str, monkeypatch) -> None:
    """A CI with a PostgreSQL service of its own sets AZML_TEST_DATABASE_URL: no server is started then,
    and each test still gets a database of its own, dropped afterwards."""
    from tests import postgres

    monkeypatch.setenv("AZML_TEST_DATABASE_URL", postgres_server)
    monkeypatch.setattr(postgres, "PostgresServer", lambda: pytest.fail("a server was started"))
    with postgres.server() as admin, postgres.database(admin) as url:
        assert admin == postgres_server and url != admin
        store = PostgresStore(url)
        try:
            asyncio.run(jobs_of(store, "a").create(new_job("run_1")))
            assert store.get("run_1") is not None
        finally:
            store.close()
        name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server, autocommit=True) as db:
        assert db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_an_insert_run_again_after_its_commit_answer_was_lost_finds_its_own_row(stores: list[JobStore]) -> None:
    """A write retried on a fresh connection (store_postgres) may find what its first try committed."""
    store = stores[0]
    job = new_job("run_again", key="k-again")
    first = asyncio.run(store.write(lambda tx: tx.insert_job(job)))
    again = asyncio.run(store.write(lambda tx: tx.insert_job(new_job("run_again", key="k-again"))))
    assert first[1] and again[1] and again[0].seq == first[0].seq
    other = asyncio.run(store.write(lambda tx: tx.insert_job(new_job("run_other", key="k-again"))))
    assert (other[0].id, other[1]) == ("run_again", False)  # another job with that key: the key's holder


def test_a_replica_whose_clock_runs_ahead_takes_no_live_replicas_jobs(postgres_url: str, monkeypatch) -> None:
    """Issue 26, item 9: leases were compared with each replica's own clock; a replica 45 s ahead took jobs
    whose owners were alive. They are measured by the database's clock now."""
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:

        async def scenario() -> None:
            await jobs_of(a, "a", lease=30.0).create(new_job("run_live"))
            real = time.time
            monkeypatch.setattr(time, "time", lambda: real() + 45)  # replica b's clock (and every other) ahead
            claim = dict(terminal=TERMINAL_NAMES, lease=30.0, everything=False, limit=10)
            assert await b.write(lambda tx: tx.claim("b", **claim)) == []
            assert await b.write(lambda tx: tx.lead("import", "b", lease=30.0))
            monkeypatch.setattr(time, "time", real)
            assert not await a.write(lambda tx: tx.lead("import", "a", lease=30.0))  # b's lease is the db's 30 s

        asyncio.run(scenario())
        assert a.get("run_live").owner == "a"
    finally:
        a.close()
        b.close()


def test_lockouts_over_for_a_window_are_forgotten(stores: list[JobStore]) -> None:
    """Issue 26, item 10: auth_lockouts rows were never purged, and every replica reads them each second."""

    async def scenario() -> None:
        for _ in range(11):
            await stores[0].auth_failed("10.0.0.1", free=10, window=0.2, max_lockout=0.1)
        await asyncio.sleep(0.4)
        await stores[1].auth_failed("10.0.0.2", free=10, window=0.2, max_lockout=0.1)

    asyncio.run(scenario())
    (count,) = stores[0]._rows("SELECT COUNT(*) FROM auth_lockouts")[0]
    assert count == 0


# -- issue 31: reads that walk an index, whatever the store holds ------------------------------------------


def _runs(count: int, *, start: int = 0) -> list[Job]:
    made = []
    for index in range(start, start + count):
        job = new_job(f"run_{index:06}")
        job.status = RunStatus.COMPLETED
        job.spec = {**job.spec, "experiment": f"exp-{index % 3}", "created_by": f"user-{index % 5}"}
        job.spec |= {"estimators": 10 + index % 7, "args": {"seed": str(index % 4), "flavour": f"f{index % 2}"}}
        job.backend_run_id = f"bench_{1_790_000_000 + index}"
        job.created_at, job.started_at, job.finished_at = 1e9 + index, 1e9 + index, 1e9 + index + index % 13
        job.result = {"metrics": {"accuracy": 0.5 + index % 50 / 100, "note": "text"}, "data_version": f"v{index % 4}"}
        made.append(job)
    return made


@contextlib.contextmanager
def _statements(store: JobStore) -> Iterator[list[tuple[str, tuple]]]:
    """The (SQL, parameters) of every read the store makes inside the block."""
    seen: list[tuple[str, tuple]] = []
    read = store._rows

    def recorded(sql: str, params: Iterable = ()) -> list:
        seen.append((sql, tuple(params)))
        return read(sql, params)

    store._rows = recorded  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        store._rows = read  # type: ignore[method-assign]


def _plan(store: JobStore, sql: str, params: tuple) -> list[str]:
    """The plan's lines for one of the store's reads. PostgreSQL with sequential scans and sorts off: where an
    index can serve the read (and its order), the plan uses it, however few rows the test holds; a read no
    index serves still shows its Seq Scan or Sort."""
    if isinstance(store, SqliteStore):
        return [row[3] for row in store._rows("EXPLAIN QUERY PLAN " + sql, params)]
    with store._pool.connection() as db:
        db.execute("SET enable_seqscan = off")
        db.execute("SET enable_sort = off")
        lines = [row[0].strip() for row in db.execute("EXPLAIN " + POSTGRES.sql(sql), params).fetchall()]
        db.execute("RESET ALL")
        return lines


def test_every_runs_list_read_walks_an_index_not_the_table(stores: list[JobStore]) -> None:
    """Searches by id prefix, backend run id prefix, experiment or starter; filters by experiment, status and
    data version; sorts by start, duration and a metric, first page and after a cursor: none reads the whole
    jobs table, and the sorted ones come in their index's order (no sort of every run)."""
    store = stores[0]
    asyncio.run(store.write(lambda tx: tx.insert_jobs(_runs(300))))
    metric = Order("metric", metric="accuracy")
    reads = {
        "search by run id prefix": (dict(search="bench_17900001"), False),
        "search by job id prefix": (dict(search="run_0002"), False),
        "search by experiment": (dict(search="exp-1"), False),
        "search by starter": (dict(search="user-2"), False),
        "search matching nothing": (dict(search="nothing-like-it"), False),
        "filter by experiment": (dict(experiment="exp-2"), True),
        "filter by data version": (dict(data_version="v3"), True),
        "filter by status": (dict(status=RunStatus.COMPLETED), True),
        "by start": (dict(order=Order("started")), True),
        "by duration": (dict(order=Order("duration", ascending=True)), True),
        "by duration after a cursor": (dict(order=Order("duration"), after=(5.0, 200)), True),
        "by a metric": (dict(order=metric), True),
        "by a metric after a cursor": (dict(order=metric, after=(0.7, 150)), True),
        "by a metric, among those without it": (dict(order=metric, after=(None, 150)), True),
        "filter by a parameter": (dict(with_params={"seed": "3"}), True),
        "filter by two parameters": (dict(with_params={"seed": "3", "flavour": "f1"}), True),
        "a metric sort filtered by a parameter": (dict(order=metric, with_params={"seed": "2"}), True),
        "by a parameter": (dict(order=Order("param", metric="estimators")), True),
        "by a parameter after a cursor": (dict(order=Order("param", metric="seed"), after=(2.0, 100)), True),
        "by a parameter, among those without it": (dict(order=Order("param", metric="flavour"), after=(None, 9)), True),
    }
    for name, (arguments, ordered) in reads.items():
        with _statements(store) as seen:
            store.page("run", limit=51, **arguments)  # type: ignore[arg-type]
        for sql, params in seen:
            plan = _plan(store, sql, params)
            whole = [line for line in plan if line in ("SCAN jobs", "SCAN m", "SCAN run_params") or "Seq Scan" in line]
            assert not whole, (name, sql, plan)
            if ordered and "seq IN" not in sql:
                sorted_all = [line for line in plan if "TEMP B-TREE FOR ORDER BY" in line or line.startswith("Sort")]
                assert not sorted_all, (name, sql, plan)


def test_a_runs_metrics_and_columns_follow_its_changes_and_go_with_it(stores: list[JobStore]) -> None:
    store = stores[0]
    metric = Order("metric", metric="accuracy", ascending=True)

    async def scenario() -> None:
        await store.write(lambda tx: tx.insert_jobs(_runs(3)))
        await store.write(lambda tx: tx.update_job("run_000001", {"result": {"metrics": {"accuracy": 0.01}}}))
        await store.write(lambda tx: tx.update_job("run_000002", {"result": {"metrics": {"accuracy": "NaN"}}}))
        spec = {**store.get("run_000000").spec, "experiment": "renamed"}
        await store.write(lambda tx: tx.update_job("run_000000", {"spec": spec}))

    asyncio.run(scenario())
    assert [j.id for j in store.page("run", order=metric)] == ["run_000001", "run_000000", "run_000002"]
    assert [j.id for j in store.page("run", search="renamed")] == ["run_000000"]
    assert [j.id for j in store.page("run", experiment="exp-0")] == []
    assert [j.id for j in store.page("run", data_version="v1")] == []  # run 1's new result has no data version
    gone = store.get("run_000001")
    asyncio.run(store.write(lambda tx: tx.remove_jobs([gone], terminal=TERMINAL_NAMES, now=time.time())))
    assert store._rows("SELECT COUNT(*) FROM run_metrics WHERE job_seq = ?", (gone.seq,))[0][0] == 0
    assert store._rows("SELECT COUNT(*) FROM run_metrics")[0][0] == 1  # run 0's accuracy; NaN is no value


def test_a_store_upgraded_to_0008_finds_and_sorts_what_it_held(store_url: str) -> None:
    """The columns and the metrics table are filled from the runs' JSON by the migration itself."""
    from service.core.migrations import downgrade

    store = open_store(store_url)
    runs = _runs(40)
    runs[5].result = {"metrics": {"accuracy": "Infinity", "loss": True}}
    asyncio.run(store.write(lambda tx: tx.insert_jobs(runs)))
    metric = Order("metric", metric="accuracy")
    reads = {
        "metric": lambda s: [j.id for j in s.page("run", order=metric, limit=100)],
        "parameter": lambda s: [j.id for j in s.page("run", order=Order("param", metric="estimators"), limit=100)],
        "parameter value": lambda s: [j.id for j in s.page("run", with_params={"seed": "1"}, limit=100)],
        "search": lambda s: [j.id for j in s.page("run", search="user-3", limit=100)],
        "experiment": lambda s: [j.id for j in s.page("run", experiment="exp-1", limit=100)],
        "data version": lambda s: [j.id for j in s.page("run", data_version="v2", limit=100)],
    }
    before = {name: read(store) for name, read in reads.items()}
    store.close()
    downgrade(store_url, "0007")
    upgraded = open_store(store_url)
    try:
        assert {name: read(upgraded) for name, read in reads.items()} == before
        assert before["metric"][-1] == "run_000005" and len(before["search"]) == 8
        assert len(before["parameter value"]) == 10 and before["parameter"][0] == "run_000034"  # 16 estimators
    finally:
        upgraded.close()


def test_a_runs_parameters_filter_and_sort_it_and_follow_its_changes(stores: list[JobStore]) -> None:
    store = stores[0]
    runs = _runs(6)
    runs[2].spec["args"] = {"seed": "1e999", "lr": "0.5"}  # text that would overflow: a value, never a number
    runs[4].spec["args"] = {"seed": " 2 ", "lr": "fast"}
    asyncio.run(store.write(lambda tx: tx.insert_jobs(runs[:3])))
    for run in runs[3:]:
        asyncio.run(store.write(lambda tx, r=run: tx.insert_job(r)))  # one at a time: the other write path
    by_seed = Order("param", metric="seed", ascending=True)
    seeds = [j.id for j in store.page("run", order=by_seed)]
    assert seeds == ["run_000000", "run_000001", "run_000005", "run_000004", "run_000003", "run_000002"]  # 0 1 1 2 3 -
    assert [j.id for j in store.page("run", with_params={"seed": "1"})] == ["run_000005", "run_000001"]
    assert [j.id for j in store.page("run", with_params={"seed": "1", "flavour": "f1"})] == ["run_000005", "run_000001"]
    assert [j.id for j in store.page("run", with_params={"lr": "fast"})] == ["run_000004"]
    first = store.page("run", order=by_seed, limit=2)
    after = (by_seed.value(first[-1]), first[-1].seq)
    assert [j.id for j in store.page("run", order=by_seed, after=after, limit=10)] == seeds[2:]
    spec = {**store.get("run_000001").spec, "args": {"seed": "9"}}
    asyncio.run(store.write(lambda tx: tx.update_job("run_000001", {"spec": spec})))
    assert [j.id for j in store.page("run", with_params={"seed": "9"})] == ["run_000001"]
    assert store.page("run", with_params={"flavour": "f1"}, limit=10)[-1].id == "run_000003"  # run 1's is gone
    gone = store.get("run_000001")
    asyncio.run(store.write(lambda tx: tx.remove_jobs([gone], terminal=TERMINAL_NAMES, now=time.time())))
    assert store._rows("SELECT COUNT(*) FROM run_params WHERE job_seq = ?", (gone.seq,))[0][0] == 0


def test_searches_and_parameter_filters_with_many_matches_in_every_order(
    stores: list[JobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SEARCH_SET matches a search or a parameter filter is checked on each run a sort's walk meets; beside
    run_metrics or run_params (both have a `name`) the run's own columns are named as its own."""
    import service.core.store as store_module

    store = stores[0]
    asyncio.run(store.write(lambda tx: tx.insert_jobs(_runs(60))))
    expected = {
        "search": [j.id for j in store.page("run", order=Order("metric", metric="accuracy"), search="exp-1")],
        "param": [j.id for j in store.page("run", order=Order("duration"), with_params={"seed": "2"})],
    }
    monkeypatch.setattr(store_module, "SEARCH_SET", 5)
    assert [j.id for j in store.page("run", order=Order("metric", metric="accuracy"), search="exp-1")] == expected[
        "search"
    ]
    assert [j.id for j in store.page("run", order=Order("duration"), with_params={"seed": "2"})] == expected["param"]
    assert len(expected["search"]) == 20 and len(expected["param"]) == 15


def test_the_replicas_periodic_reads_walk_an_index_not_the_history(stores: list[JobStore]) -> None:
    """What every replica reads again and again (unfinished jobs, undelivered callbacks, the retention sweep's
    candidates, imported runs still without a model) costs what is open or recent, not every run kept."""
    store = stores[0]
    asyncio.run(store.write(lambda tx: tx.insert_jobs(_runs(300))))
    with _statements(store) as seen:
        store.unfinished(TERMINAL_NAMES)
        store.undelivered_callbacks(TERMINAL_NAMES)
        store.expired(TERMINAL_NAMES, ended_before=1e9 + 10)
        store.imported_without_model(since=time.time() - 3600)
    for sql, params in seen:
        plan = _plan(store, sql, params)
        # a SCAN of the partial index of pending jobs reads only those; any other SCAN of jobs reads them all
        whole = [line for line in plan if (line.startswith("SCAN jobs") and "jobs_pending" not in line)]
        assert not [*whole, *(line for line in plan if "Seq Scan on jobs" in line)], (sql, plan)
    # the database keeps `pending` itself: a job that ends and has nothing to deliver leaves the claimable set
    job = new_job("run_open")
    asyncio.run(store.write(lambda tx: tx.insert_job(job)))
    assert [j.id for j in store.unfinished(TERMINAL_NAMES)] == ["run_open"]
    asyncio.run(store.write(lambda tx: tx.update_job("run_open", {"status": RunStatus.COMPLETED})))
    assert store.unfinished(TERMINAL_NAMES) == [] and store.undelivered_callbacks(TERMINAL_NAMES) == []
    (pending,) = store._rows("SELECT COUNT(*) FROM jobs WHERE pending = 1")[0]
    assert pending == 0
