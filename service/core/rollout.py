"""Blue/green, decided in one place for every caller: which slot a version goes to, the smoke test before
any traffic moves, the canary, the rollback target.

An endpoint has at most two slots (blue and green). A new version goes to the slot that takes no
traffic (or is empty), beside the live one; it must answer its smoke test there (requests pinned to
that slot) before traffic moves; then it takes `traffic` percent (100: all, the other slot kept with
0 % as the rollback target; less: a canary, the other keeps the rest). Asking again for a version a
slot already holds only moves traffic (how a canary is promoted to 100 %). A rollback gives all
traffic to the other slot, after its own smoke test. A smoke test that fails leaves traffic where
it was and says why. Every function here blocks (models load, requests go out): workers call them
in threads.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from amllib.backends.base import Backend
from amllib.endpoints.base import SLOTS, EndpointInfo, Endpoints
from amllib.errors import Conflict, EndpointNotFound, SmokeTestFailed


def deploy(endpoints: Endpoints, backend: Backend, spec: dict[str, Any]) -> dict[str, Any]:
    """Carry out a DeploySpec of action deploy; the job's result."""
    name = spec["endpoint"]
    version = backend.resolve_version(spec["model"], version=spec.get("version"), alias=spec.get("alias"))
    try:
        before: EndpointInfo | None = endpoints.get(name)
    except EndpointNotFound:
        before = None
    holding = next(
        (d for d in (before.deployments if before else []) if (d.model, d.version) == (version.name, version.version)),
        None,
    )
    live = _live(before)
    if holding is not None and holding.error is None:
        slot, fresh = holding.name, False
    else:
        if before is not None and sum(1 for d in before.deployments if d.traffic > 0) > 1:
            raise Conflict(
                f"endpoint {name} is running a canary ({_traffic_text(before)}): promote it (deploy that version "
                "with traffic 100) or roll back first"
            )
        slot, fresh = _free_slot(before, live), True
    try:
        if fresh:
            endpoints.deploy(name, slot, version, alias=spec.get("alias"))
        smoke = smoke_test(endpoints, name, slot, spec.get("samples"))
    except SmokeTestFailed:
        with contextlib.suppress(EndpointNotFound):
            if before is None:
                endpoints.delete(name)  # an endpoint made for a version that failed is not left behind
            elif fresh:
                endpoints.remove_slot(name, slot)  # what served keeps serving; the failed version is not kept
        raise
    others = [d.name for d in endpoints.get(name).deployments if d.name != slot]  # at most one: two slots
    traffic = int(spec.get("traffic") or 100) if others else 100  # no canary without a version beside it
    shares = {slot: traffic, **{other: 100 - traffic for other in others}}
    endpoints.set_traffic(name, shares)
    if spec.get("follow"):
        endpoints.set_follow(name, {"model": version.name, "alias": str(spec["alias"])})
    previous = _slot_of(before, live) if live and live != slot else None
    return {
        "slot": slot,
        "model": version.name,
        "version": version.version,
        "traffic": shares,
        "previous": previous,
        "smoke": smoke,
    }


def rollback(endpoints: Endpoints, spec: dict[str, Any]) -> dict[str, Any]:
    """All traffic to the slot beside the live one (the version that served before), once it answers."""
    name = spec["endpoint"]
    before = endpoints.get(name)
    live = _live(before)
    targets = [d for d in before.deployments if d.name != live and d.error is None]
    if live is None or not targets:
        raise Conflict(f"endpoint {name} has no version beside the live one to roll back to")
    target = targets[0]
    smoke = smoke_test(endpoints, name, target.name, spec.get("samples"))
    shares = {d.name: (100 if d.name == target.name else 0) for d in before.deployments}
    endpoints.set_traffic(name, shares)
    if before.follow:  # a rollback is a person overruling the alias: the endpoint stops following it
        endpoints.set_follow(name, None)
    return {
        "slot": target.name,
        "model": target.model,
        "version": target.version,
        "traffic": shares,
        "previous": _slot_of(before, live),
        "smoke": smoke,
    }


def smoke_test(endpoints: Endpoints, name: str, slot: str, samples: list[dict[str, Any]] | None) -> dict[str, Any]:
    """Each sample POSTed to /api/predict of that slot must answer 200 with a probability per class."""
    if not samples:
        status, params = endpoints.invoke(name, "/api/predict/params", None, slot=slot)
        if status != 200 or not isinstance(params, dict):
            raise SmokeTestFailed(f"the new version does not answer GET /api/predict/params: {status} {params}")
        samples = [sample_from(params)]
    answers = []
    for index, sample in enumerate(samples):
        status, answer = endpoints.invoke(name, "/api/predict", sample, slot=slot)
        if status != 200 or not _probabilities(answer):
            raise SmokeTestFailed(f"smoke test request {index + 1} of {len(samples)} answered {status}: {answer}"[:500])
        answers.append(answer)
    return {"passed": True, "requests": len(samples), "first_answer": answers[0]}


def sample_from(params: dict[str, Any]) -> dict[str, Any]:
    """A request built from the model's own parameters: each category's first value, 0 for a number."""
    return {key: (kinds[0] if isinstance(kinds, list) and kinds else 0) for key, kinds in params.items()}


def _probabilities(answer: Any) -> bool:
    return (
        isinstance(answer, dict)
        and bool(answer)
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in answer.values())
    )


def _live(info: EndpointInfo | None) -> str | None:
    taking = [(d.traffic, d.name) for d in (info.deployments if info else []) if d.traffic > 0]
    return max(taking)[1] if taking else None


def _free_slot(info: EndpointInfo | None, live: str | None) -> str:
    used = {d.name: d for d in (info.deployments if info else [])}
    for slot in SLOTS:
        if slot not in used:
            return slot
    return next(slot for slot in SLOTS if slot != live)


def _slot_of(info: EndpointInfo | None, slot: str | None) -> dict[str, Any] | None:
    found = info.slot(slot) if info and slot else None
    return {"slot": found.name, "model": found.model, "version": found.version} if found else None


def _traffic_text(info: EndpointInfo) -> str:
    return ", ".join(f"{d.name} v{d.version} {d.traffic}%" for d in info.deployments)
