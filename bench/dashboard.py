"""The dashboard's figures, each beside its baseline from the same run.

    python -m bench.dashboard [--runs 10000] [--seconds 8]

1. First screen of the runs page (headless Chromium: login cookie set, navigate, first row
   drawn) with 10,000 runs in the store, beside the same with 10 runs. Target < 300 ms.
2. A status change reaching an open runs page: POST /runs answered → its row drawn, by the
   page's own event stream. Target < 500 ms.
3. GET /runs/{id} throughput (wrk, 16 connections) with 100 open event streams while a
   change happens every 100 ms, beside none open. Target: less than 10 % lower.
4. Finding a run: GET /runs?q=<a prefix of a backend run id> (and of a service id, an exact
   experiment, and sort=metrics.accuracy) with 10,000 runs, beside 10 runs. Timed by the client on
   loopback, so each figure is the server's time plus a loopback round trip. Target < 100 ms.
5. The compare page with 10 runs of 1,000 values per metric (two metrics), from navigating to
   every line drawn, beside 2 runs of 10 values. Target < 500 ms.
Needs wrk (apt-get install wrk) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx

from bench.api_latency import wrk
from bench.common import service_env, start_uvicorn, stop, workspace
from service.core.store_sqlite import SqliteStore

TOKEN = "bench-token"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def fill_store(db: Path, count: int) -> None:
    """count finished run jobs, written straight into the job store before the service starts (in bulk)."""
    from bench.store_reads import fill

    store = SqliteStore(db)
    try:
        fill(store, count)
    finally:
        store.close()


def rss_mib(pid: int) -> float:
    """The resident memory of a process (Linux), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def signed_in(browser: object, url: str) -> tuple[object, object]:
    """A new browser context signed in, on the runs page."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/ui/login")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#runs tbody tr")
    return context, page


def first_screen(browser: object, url: str, tries: int = 5) -> list[float]:
    """Milliseconds from navigating to /ui/ (already signed in) to the first run row drawn."""
    context, page = signed_in(browser, url)
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        page.goto(url + "/ui/")
        page.wait_for_selector("#runs tbody tr[data-id]")
        times.append((time.perf_counter() - started) * 1000)
    context.close()
    return times


def change_to_page(browser: object, url: str, tries: int = 5) -> list[float]:
    """Milliseconds from POST /runs answering to the new run's row drawn on an open runs page."""
    context, page = signed_in(browser, url)
    page.wait_for_function("document.getElementById('live').classList.contains('on')")
    times = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        for _ in range(tries):
            job = http.post("/runs", json={"script": "quick.py"}).json()
            answered = time.perf_counter()
            page.wait_for_selector(f'tr[data-id="{job["id"]}"]')
            times.append((time.perf_counter() - answered) * 1000)
    context.close()
    return times


def searches(url: str, db: Path, tries: int = 20) -> dict[str, list[float]]:
    """Milliseconds per GET /runs of each kind of search, one persistent client (loopback round trip included)."""
    store = SqliteStore(db)
    some = store.page("run", limit=500)[-1]  # a run deep in the list, not the newest
    store.close()
    queries = {
        "backend id prefix": {"q": some.backend_run_id[:16]},
        "service id prefix": {"q": some.id[:10]},
        "experiment": {"q": "bench"},
        "sorted by a metric": {"sort": "metrics.accuracy"},
    }
    found: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        for name, params in queries.items():
            http.get("/runs", params=params).raise_for_status()  # warm
            times = []
            for _ in range(tries):
                started = time.perf_counter()
                http.get("/runs", params=params).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            found[name] = times
    return found


CURVES = """import argparse, os
from azureml.core import Run
parser = argparse.ArgumentParser()
parser.add_argument("--data-path")
parser.add_argument("--estimators", type=int, default=1)
parser.add_argument("--points", type=int, default=1000)
args = parser.parse_args()
run = Run.get_context()
run.log_list("loss", [1.0 / (1 + i + args.estimators) for i in range(args.points)])
run.log_list("accuracy", [0.5 + 0.4 * i / args.points for i in range(args.points)])
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("curves")
"""


def compared_runs(url: str, count: int, points: int) -> list[str]:
    """count finished runs whose two metrics have `points` values each (training/curves.py)."""
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as http:
        http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
        for index in range(count):
            body = {"script": "curves.py", "estimators": index + 1, "args": {"points": str(points)}}
            job = http.post("/runs", params={"wait": 120}, json=body).json()
            if job.get("status") != "Completed":
                raise RuntimeError(f"a curves run did not complete: {job}")
            ids.append(job["id"])
    return ids


def compare_drawn(browser: object, url: str, ids: list[str], tries: int = 5) -> list[float]:
    """Milliseconds from navigating to /ui/compare?ids=… to a line (or dot) per run on every chart."""
    context, page = signed_in(browser, url)
    address = f"{url}/ui/compare?ids={','.join(ids)}"
    drawn = f"""() => {{
        const figures = document.querySelectorAll('#compare-charts figure');
        const lines = (f) => f.querySelectorAll('[data-run]').length;
        return figures.length === 2 && [...figures].every((f) => lines(f) === {len(ids)});
    }}"""
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        page.goto(address)
        page.wait_for_function(drawn, polling="raf")
        times.append((time.perf_counter() - started) * 1000)
    context.close()
    return times


def open_streams(port: int, count: int) -> list[socket.socket]:
    streams = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET /events HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        streams.append(sock)
    drain = threading.Thread(target=_drain, args=(streams,), daemon=True)
    drain.start()
    return streams


def _drain(streams: list[socket.socket]) -> None:
    """Read what the streams send, as a browser would, so the server is never held up by full buffers."""
    import selectors

    selector = selectors.DefaultSelector()
    for sock in streams:
        selector.register(sock, selectors.EVENT_READ)
    while True:
        try:
            for key, _ in selector.select(timeout=1):
                if not key.fileobj.recv(65536):
                    selector.unregister(key.fileobj)
        except (OSError, ValueError):
            return


def churn(url: str, stop_at: float) -> None:
    """A data upload every 100 ms (three job changes each), so the streams have events to send."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        while time.time() < stop_at:
            http.post("/data", params={"path": "churn"}, json={"data_dir": "data"})
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--compared", type=int, default=10, help="runs on the compare page")
    parser.add_argument("--points", type=int, default=1000, help="values per metric of each compared run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    from playwright.sync_api import sync_playwright

    work = workspace("bench-ui-")
    (work / "training" / "curves.py").write_text(CURVES)
    fill_store(work / "many" / "jobs.sqlite", args.runs)
    fill_store(work / "few" / "jobs.sqlite", 10)
    many, many_url = start_uvicorn("service.app:app", service_env(work, "many", AZML_API_TOKENS=TOKEN))
    few, few_url = start_uvicorn("service.app:app", service_env(work, "few", AZML_API_TOKENS=TOKEN))
    try:
        with httpx.Client(base_url=many_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
            http.post("/data", params={"wait": 30}, json={"data_dir": "data"}).raise_for_status()
            job = http.post("/runs", params={"wait": 60}, json={"script": "quick.py"}).json()
        big_search = searches(many_url, work / "many" / "jobs.sqlite")
        small_search = searches(few_url, work / "few" / "jobs.sqlite", tries=5)
        print()
        for name, times in big_search.items():
            print(
                f"GET /runs search, {name}: {args.runs:,} runs median {statistics.median(times):.1f} ms "
                f"(max {max(times):.1f}); 10 runs median {statistics.median(small_search[name]):.1f} ms   "
                "[target < 100 ms]"
            )
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            small, big = first_screen(browser, few_url), first_screen(browser, many_url)
            print(
                f"\nruns page, first screen: {args.runs:,} runs median {statistics.median(big):.0f} ms "
                f"(max {max(big):.0f}); 10 runs median {statistics.median(small):.0f} ms   [target < 300 ms]"
            )
            changes = change_to_page(browser, many_url)
            print(
                f"status change → open page: median {statistics.median(changes):.0f} ms, "
                f"max {max(changes):.0f} ms   [target < 500 ms]"
            )
            print(
                f"service memory after these pages: {args.runs:,} runs {rss_mib(many.pid):.0f} MiB; "
                f"10 runs {rss_mib(few.pid):.0f} MiB   [target: no growth with the runs kept]"
            )
            few_runs = compared_runs(few_url, 2, 10)
            many_runs = compared_runs(few_url, args.compared, args.points)
            small_compare = compare_drawn(browser, few_url, few_runs)
            big_compare = compare_drawn(browser, few_url, many_runs)
            print(
                f"compare page, drawn: {args.compared} runs × {args.points:,} values median "
                f"{statistics.median(big_compare):.0f} ms (max {max(big_compare):.0f}); 2 runs × 10 values median "
                f"{statistics.median(small_compare):.0f} ms   [target < 500 ms]"
            )
            browser.close()
        target = f"{many_url}/runs/{job['id']}"
        header = work / "auth.lua"
        header.write_text(f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n')
        worker = threading.Thread(target=churn, args=(many_url, time.time() + args.seconds + 1), daemon=True)
        worker.start()
        quiet = wrk(target, args.seconds, script=header)
        worker.join()
        port = int(many_url.rsplit(":", 1)[1])
        streams = open_streams(port, 100)
        time.sleep(1)
        worker = threading.Thread(target=churn, args=(many_url, time.time() + args.seconds + 1), daemon=True)
        worker.start()
        busy = wrk(target, args.seconds, script=header)
        worker.join()
        with httpx.Client(base_url=many_url, timeout=10) as http:
            open_now = http.get("/healthz").json()["event_streams"]
        for sock in streams:
            sock.close()
        print(
            f"GET /runs/{{id}}: {quiet['rate']:.0f} req/s with no stream open; {busy['rate']:.0f} req/s with "
            f"{open_now} streams open and a change every 100 ms: {busy['rate'] / quiet['rate'] - 1:+.1%}   "
            "[target: less than 10 % lower]"
        )
        figures = {"first_screen_ms": big, "change_ms": changes, "compare_ms": big_compare, "search_ms": big_search}
        print(json.dumps({**figures, "quiet": quiet, "busy": busy}))
    finally:
        stop(many)
        stop(few)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
