"""One local endpoint's process: its own port, key auth, the seed's model API and Azure ML's /score.

Run as `python -m amllib.endpoints.server <endpoint folder> [host]`, started (and restarted when it
dies) by amllib/endpoints/local.py, in a session of its own so it keeps serving while the control
plane restarts. It serves what endpoint.json says (amllib/endpoints/state.py) and looks at it four
times a second: a new version is loaded beside the one serving, and only once loaded does one
reference swap to it. The socket never changes hands and a request keeps the snapshot it started
with, so a switch loses no request.

Routes (all but /healthz need `Authorization: Bearer <key>`, either of the endpoint's two keys):
`POST /api/predict`, `GET /api/predict/params`, `GET /api/info` (the Batcomputer model API),
`POST /score` (`{"data": [...]}`, Azure ML's batch shape), `GET /stats` (requests, errors and
latency per deployment), `GET /healthz` (the generation served, the versions, load errors; no
secret). A request goes to a deployment by the traffic map, or to the one its
`azureml-model-deployment` header names (0 % traffic included: that is how a new version is
smoke-tested before traffic moves). Answers name the deployment and version in headers.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amllib import jsonsafe
from amllib.endpoints.state import STATE, EndpointState, read
from amllib.scoring import ModelContractError, Predictor, ScoringError, model_folder

log = logging.getLogger("amllib.endpoint")
WATCH_SECONDS = 0.25
MAX_BODY = 10 * 1024 * 1024
LATENCIES_KEPT = 4096
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Served:
    """What the endpoint serves at one moment; replaced whole, never changed."""

    generation: int = 0
    predictors: dict[str, Predictor] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    weights: tuple[tuple[str, ...], tuple[int, ...]] = ((), ())
    keys: tuple[bytes, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Stats:
    requests: int = 0
    errors: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def as_dict(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def at(share: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3) if ordered else None

        return {"requests": self.requests, "errors": self.errors, "p50_ms": at(0.5), "p99_ms": at(0.99)}


class Endpoint:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name
        self.served = Served()
        self.stats: dict[str, Stats] = {}
        self._seen: tuple[float, int] | None = None

    # -- following endpoint.json ------------------------------------------------------------
    def reload(self) -> bool:
        """Load what endpoint.json says if it changed; True when something new is served."""
        try:
            stat = (self.folder / STATE).stat()
        except FileNotFoundError:
            return False
        mark = (stat.st_mtime, stat.st_size)
        if mark == self._seen:
            return False
        state = read(self.folder)
        if state is None:
            return False
        self.served = self._build(state)
        self._seen = mark
        return True

    def _build(self, state: EndpointState) -> Served:
        old = self.served
        predictors, versions, errors = {}, {}, {}
        for slot, deployment in state.deployments.items():
            kept = old.predictors.get(slot)
            if kept is not None and kept.extra.get("folder") == deployment.folder:
                predictors[slot] = kept  # the same files: loaded already
            else:
                try:
                    folder = model_folder(self.folder / deployment.folder)
                    info = {
                        "endpoint": state.name,
                        "deployment": slot,
                        "model": deployment.model,
                        "version": deployment.version,
                        "alias": deployment.alias,
                    }
                    predictor = Predictor(folder, info=info)
                    predictor.extra["folder"] = deployment.folder
                    predictors[slot] = predictor
                except (ModelContractError, OSError) as exc:
                    errors[slot] = str(exc)
                    continue
            versions[slot] = deployment.version
            self.stats.setdefault(slot, Stats())
        taking = [(slot, share) for slot, share in state.traffic.items() if share > 0 and slot in predictors]
        weights = (tuple(s for s, _ in taking), tuple(w for _, w in taking))
        keys = tuple(key.encode() for key in state.keys.values())
        return Served(state.generation, predictors, versions, weights, keys, errors)

    async def watch(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.reload)
            except Exception:
                log.exception("endpoint %s: reading its state failed; serving what it served", self.name)
            await asyncio.sleep(WATCH_SECONDS)

    # -- HTTP ---------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        served = self.served  # this request's snapshot, whatever the watcher swaps in meanwhile
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":
            await _answer(send, 204, None, cors_preflight=True)
            return
        if path == "/healthz" and method == "GET":
            await _answer(send, 200, self.health(served))
            return
        if not _authorized(scope, served.keys):
            await _answer(send, 401, {"error": "a key is needed: Authorization: Bearer <key>"})
            return
        if path == "/stats" and method == "GET":
            await _answer(send, 200, {slot: stats.as_dict() for slot, stats in self.stats.items()})
            return
        route = ROUTES.get((method, path))
        if route is None:
            allowed = sorted(m for m, p in ROUTES if p == path)
            status, body = (405, {"error": f"use {' or '.join(allowed)}"}) if allowed else (404, {"error": "not found"})
            await _answer(send, status, body)
            return
        slot = _choose(scope, served)
        if slot is None or slot not in served.predictors:
            wanted = _header(scope, b"azureml-model-deployment")
            why = f"no deployment {wanted!r}" if wanted else "no deployment takes traffic"
            await _answer(send, 404 if wanted else 503, {"error": why})
            return
        predictor = served.predictors[slot]
        headers = [
            (b"azureml-model-deployment", slot.encode()),
            (b"x-model-version", str(served.versions[slot]).encode()),
        ]
        answer: Any
        try:
            payload = await _json_body(receive) if method == "POST" else None
            # on the event loop: a hop to a thread cost a third of the throughput (bench/endpoint_predict.py,
            # the GIL shared by two threads); /healthz waits behind at most the requests already queued
            status, answer = 200, route(predictor, payload)
        except ScoringError as exc:
            status, answer = exc.status, {"error": exc.message}
        except Exception as exc:  # never a stack trace to the caller; the log has it
            log.exception("endpoint %s, deployment %s: scoring failed", self.name, slot)
            status, answer = 500, {"error": f"scoring failed: {type(exc).__name__}"}
        stats = self.stats.setdefault(slot, Stats())
        stats.requests += 1
        stats.errors += status >= 400
        await _answer(send, status, answer, headers=headers)
        stats.latencies.append(time.perf_counter() - started)

    def health(self, served: Served) -> dict[str, Any]:
        return {
            "status": "ok",
            "endpoint": self.name,
            "generation": served.generation,
            "versions": served.versions,
            "traffic": dict(zip(*served.weights, strict=True)),
            "errors": served.errors,
        }

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        watcher = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.to_thread(self.reload)
                watcher = asyncio.create_task(self.watch())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if watcher is not None:
                    watcher.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return


ROUTES: dict[tuple[str, str], Callable[[Predictor, Any], Any]] = {
    ("POST", "/api/predict"): lambda predictor, body: predictor.predict(body),
    ("GET", "/api/predict/params"): lambda predictor, body: predictor.params(),
    ("GET", "/api/info"): lambda predictor, body: {k: v for k, v in predictor.info().items() if k != "folder"},
    ("POST", "/score"): lambda predictor, body: predictor.score(body),
}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _authorized(scope: Scope, keys: tuple[bytes, ...]) -> bool:
    given = _header(scope, b"authorization") or ""
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    candidate = token.strip().encode("latin-1")
    return any(hmac.compare_digest(candidate, key) for key in keys)  # every key compared, in constant time


def _choose(scope: Scope, served: Served) -> str | None:
    wanted = _header(scope, b"azureml-model-deployment")
    if wanted is not None:
        return wanted
    names, weights = served.weights
    if not names:
        return None
    return names[0] if len(names) == 1 else random.choices(names, weights)[0]


async def _json_body(receive: Receive) -> Any:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ScoringError(f"the body is over {MAX_BODY // (1024 * 1024)} MiB", status=413)
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ScoringError("the body is not JSON") from None


async def _answer(
    send: Send,
    status: int,
    body: Any,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    cors_preflight: bool = False,
) -> None:
    content = b"" if body is None else jsonsafe.dumps(body).encode()  # a metadata.json NaN is text, never invalid JSON
    head = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*"), *(headers or [])]
    if cors_preflight:
        head += [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", b"authorization, content-type, azureml-model-deployment"),
        ]
    head.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": content})


def main(argv: list[str]) -> None:
    import uvicorn

    folder = Path(argv[0]).resolve()
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    state = read(folder)
    if state is None:
        raise SystemExit(f"no {STATE} in {folder}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        Endpoint(folder), host=host, port=state.port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1:])
