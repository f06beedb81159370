"""The live feed (GET /events): ordered, resumable with Last-Event-ID, nothing lost, freed on disconnect."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests.service.conftest import FULL_TOKEN, Service, upload


class Listener:
    """Reads one event stream in a thread over a plain socket (closable from the test), collecting events."""

    def __init__(self, service: Service, *, params: dict | None = None, last_event_id: str | None = None) -> None:
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        head = f"GET /events?{query} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {FULL_TOKEN}\r\n"
        if last_event_id is not None:
            head += f"Last-Event-ID: {last_event_id}\r\n"
        self.sock = socket.create_connection(("127.0.0.1", service.port))
        self.sock.sendall((head + "\r\n").encode())
        self.events: list[tuple[int, str, dict]] = []
        self.logs: list[str] = []  # the text of `log` events (a run job's stream)
        self.order: list[tuple[str, str]] = []  # ("log", text) and (event name, status) as they arrived
        self.opened = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(10)

    def _read(self) -> None:
        with self.sock.makefile("rb") as reader:  # closed with the thread: an open file keeps the socket alive
            self._read_from(reader)

    def _read_from(self, reader) -> None:
        status = reader.readline().decode()
        headers = []
        while (line := reader.readline().decode().strip()) != "":
            headers.append(line.lower())
        assert status.startswith("HTTP/1.1 200") and "content-type: text/event-stream; charset=utf-8" in headers
        self.opened.set()
        fields: dict[str, str] = {}
        try:
            for raw in reader:
                line = raw.decode().rstrip("\n")
                if line == "":
                    if fields.get("event") == "log":
                        self.logs.append(json.loads(fields["data"])["text"])
                        self.order.append(("log", self.logs[-1]))
                    elif fields.get("event") == "reset":
                        self.order.append(("reset", fields.get("id", "")))
                    elif "data" in fields and "id" in fields:
                        seq = int(fields["id"].partition(".")[0])  # a run job's stream: <event id>.<log offset>
                        self.events.append((seq, fields.get("event", ""), json.loads(fields["data"])))
                        self.order.append((fields.get("event", ""), self.events[-1][2].get("status", "")))
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except OSError:
            pass  # closed by the test

    def wait_for(self, predicate, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while not predicate(self.events) and time.time() < deadline:
            time.sleep(0.05)
        assert predicate(self.events), self.events[-5:]

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)


def completed(job_id: str):
    return lambda events: any(e[2]["id"] == job_id and e[2]["status"] == "Completed" for e in events)


def test_resume_with_last_event_id_loses_and_repeats_nothing(service: Service) -> None:
    with service.client() as client:
        first = upload(client, {"a.csv": b"1"}).json()
        listener = Listener(service, params={"after": 0})
        listener.wait_for(completed(first["id"]))
        listener.close()
        seen = [seq for seq, _, _ in listener.events]
        assert seen == list(range(1, len(seen) + 1))
        assert {e[1] for e in listener.events} == {"data"}
        last = seen[-1]
        second = upload(client, {"b.csv": b"2"}).json()  # happens while nobody listens
        resumed = Listener(service, last_event_id=str(last))
        resumed.wait_for(completed(second["id"]))
        resumed.close()
        ids = [seq for seq, _, _ in resumed.events]
        assert ids[0] == last + 1 and ids == list(range(last + 1, last + 1 + len(ids)))
        assert next(e[2]["status"] for e in resumed.events if e[2]["id"] == second["id"]) == "Queued"


def test_a_burst_of_changes_arrives_whole_and_in_order(service: Service) -> None:
    listener = Listener(service)  # from now on
    with ThreadPoolExecutor(8) as pool, service.client() as client:
        jobs = list(pool.map(lambda i: upload(client, {f"f{i}.csv": b"1"}, path=f"burst{i}").json()["id"], range(70)))
    listener.wait_for(lambda events: all(completed(j)(events) for j in jobs))
    listener.close()
    ids = [seq for seq, _, _ in listener.events]
    assert len(ids) >= 210 and ids == list(range(ids[0], ids[0] + len(ids)))  # no gap, no repeat
    for job_id in jobs:
        statuses = [e[2]["status"] for e in listener.events if e[2]["id"] == job_id]
        assert statuses[0] == "Queued" and statuses[-1] == "Completed"


def test_a_closed_stream_is_freed(service: Service) -> None:
    listeners = [Listener(service) for _ in range(5)]
    with service.client() as client:
        assert client.get("/healthz").json()["event_streams"] == 5
        for listener in listeners:
            listener.close()
        deadline = time.time() + 10
        while client.get("/healthz").json()["event_streams"] and time.time() < deadline:
            time.sleep(0.1)
        assert client.get("/healthz").json()["event_streams"] == 0


def test_a_job_filtered_stream_and_a_read_token(service: Service) -> None:
    with service.client() as client:
        job = upload(client, {"a.csv": b"1"}).json()
        upload(client, {"b.csv": b"1"}, path="other")
    listener = Listener(service, params={"after": 0, "job": job["id"]})
    listener.wait_for(completed(job["id"]))
    listener.close()
    assert {e[2]["id"] for e in listener.events} == {job["id"]}


def test_a_job_stream_finds_its_event_behind_many_of_other_jobs(tmp_path) -> None:
    import asyncio

    from service.core.events import BATCH, EventFeed
    from service.core.store_sqlite import SqliteStore

    store = SqliteStore(tmp_path / "jobs.sqlite")

    async def scenario() -> list:
        feed = EventFeed(store)

        def append(tx) -> None:
            for index in range(BATCH + 100):
                tx.append_event(topic="data", job_id="other", data={"n": index})
            tx.append_event(topic="run", job_id="mine", data={"n": "mine"})

        await store.write(append)
        feed.changed()
        return feed._from_window(0, "mine")

    try:
        found = asyncio.run(scenario())
    finally:
        store.close()
    assert [topic for _, topic, _ in found] == ["run"]


def test_a_malformed_or_huge_last_event_id_resumes_at_the_end(service: Service) -> None:
    """'1.²' was a 500 (str.isdigit accepts '²'); an offset past 2**63 killed the stream in the log's seek."""
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        run = client.post("/runs", json={"script": "slow_accuracy.py"}).json()
    odd = Listener(service, params={"job": run["id"]}, last_event_id="1.\u00b2")
    huge = Listener(service, params={"job": run["id"]}, last_event_id=f"{2**64}.{2**64}")
    feed = Listener(service, last_event_id=str(10**17))  # far ahead of the newest event
    for listener in (odd, huge, feed):
        listener.wait_for(completed(run["id"]), timeout=60)
        listener.close()
    assert feed.order[0][0] == "reset" and huge.order[0][0] == "reset"  # told to reload, then live
    assert "Traceback" not in service.log.read_text()


def test_a_runs_last_log_lines_arrive_before_its_end(service: Service) -> None:
    """A client that stops reading at Completed must already have the run's final lines."""
    with service.client() as client:
        upload(client, {"a.csv": b"1"})
        run = client.post("/runs", json={"script": "slow_accuracy.py", "args": {"seconds": "1"}}).json()
    listener = Listener(service, params={"job": run["id"], "after": 0})
    listener.wait_for(completed(run["id"]), timeout=60)
    listener.close()
    ended = listener.order.index(("run", "Completed"))
    assert any("done" in text for kind, text in listener.order[:ended] if kind == "log"), listener.order


def test_signing_out_closes_the_sessions_open_streams(service: Service) -> None:
    import httpx

    login = httpx.post(f"{service.url}/ui/login", data={"token": FULL_TOKEN, "next": "/ui/"})
    cookie = login.cookies["azml_session"]
    sock = socket.create_connection(("127.0.0.1", service.port))
    try:
        sock.sendall(f"GET /events HTTP/1.0\r\nHost: x\r\nCookie: azml_session={cookie}\r\n\r\n".encode())
        sock.settimeout(10)
        assert sock.recv(200).startswith(b"HTTP/1.1 200")
        httpx.get(f"{service.url}/ui/logout", cookies={"azml_session": cookie})
        started = time.monotonic()
        while sock.recv(4096):  # the stream ends (EOF) once the session is revoked
            assert time.monotonic() - started < 8, "the stream outlived its session"
    finally:
        sock.close()
    assert httpx.get(f"{service.url}/runs", cookies={"azml_session": cookie}).status_code == 401


def test_streams_read_the_table_off_the_event_loop(tmp_path) -> None:
    """Replays from the start read SQLite in the feed's reader threads: on the loop, 200 of them stalled /healthz."""
    import asyncio

    from service.core.events import EventFeed
    from service.core.store_sqlite import SqliteStore

    store = SqliteStore(tmp_path / "jobs.sqlite")
    readers: set[str] = set()
    real = store.events_after

    def recording(*args, **kwargs):
        readers.add(threading.current_thread().name)
        return real(*args, **kwargs)

    async def scenario() -> list[bytes]:
        await store.write(lambda tx: tx.append_event(topic="run", job_id="a", data={"n": 1}))
        feed = EventFeed(store)
        store.events_after = recording
        chunks = []
        async for chunk in feed.stream(0, gone=lambda: bool(chunks)):
            chunks.append(chunk)
        feed.close()
        return chunks

    try:
        chunks = asyncio.run(scenario())
    finally:
        store.close()
    assert b'"n": 1' in chunks[0]
    assert readers and all(name.startswith("event-reader") for name in readers), readers
