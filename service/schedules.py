"""Continuous training: schedules that start runs on a cron, every so often, or on each new data version, then
promote what the run registers (and an endpoint following that alias rolls).

**Exactly once.** Every replica looks for due schedules twice a second. One transaction locks a due
schedule's row (others skip it), records the fire under the primary key (schedule, tick), inserts the
run job (its Idempotency-Key names the tick) and moves the schedule to its next tick: a replica killed
at any moment either committed all of it or none, and the next look (on any replica) carries on. The
run is then carried out like any job (a replica that dies with it leased loses it to another).

**Missed ticks.** A tick late by less than CATCH_UP (a replica failing over) fires as usual, each one.
Ticks older than that were missed while no replica ran: `missed: once` fires one run for them on
return, `skip` records them skipped; they are never replayed one by one.

**After the run** (one replica at a time): the fire records how the run ended; with `promote`, the
version it registered is offered to the alias through its gate (a protected alias asks for an approval,
as any caller would), keyed by the fire so a retry never moves it twice. Events `schedule.fired` and
`schedule.failed` go to /events and the notification subscriptions.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from amllib.errors import AmlError, Conflict, InvalidInput, NotFound, quoted
from amllib.promotion import GateRefused
from amllib.times import iso
from service import promotions
from service.actions import Services, new_job, run_spec
from service.core.jobs import is_terminal
from service.core.schedule_times import Trigger
from service.core.schemas import RunRequest, ScheduleChange, ScheduleRequest, render
from service.core.store import Job, Tx

log = logging.getLogger("service")
CATCH_UP = 120.0  # a tick later than this was missed while no replica ran (failing over takes a lease's time)
MOST_TICKS = 1000  # ticks looked at in one pass of one schedule
FIRES_SHOWN = 20
FIRES_KEPT = 1000  # a schedule's history: its newest fires (within AZML_RETENTION_DAYS, when set)


def _spec(svc: Services, request: ScheduleRequest | ScheduleChange, old: dict[str, Any] | None) -> dict[str, Any]:
    """The stored spec: the trigger checked, the run filled in with AZML_* defaults and checked as POST /runs."""
    base = dict(old or {})
    if request.trigger is not None:
        base["trigger"] = Trigger.of(request.trigger).as_dict()
    if request.run is not None:
        asked = RunRequest.model_validate(request.run.model_dump())
        base["run"] = dict(run_spec(svc, asked))
    if request.promote is not None:
        base["promote"] = request.promote.model_dump(mode="json")
    if request.missed is not None:
        base["missed"] = request.missed
    trigger = Trigger.of(base["trigger"])
    if trigger.on_data is not None:
        base["run"]["datapath"] = trigger.on_data  # a data trigger's run reads the path it watches
    return base


def _first_tick(spec: dict[str, Any], origin: float, now: float) -> float | None:
    return Trigger.of(spec["trigger"]).next_after(now, origin=origin)


async def create(svc: Services, request: ScheduleRequest, *, caller: str) -> dict[str, Any]:
    spec = _spec(svc, request, {"missed": request.missed})
    now = time.time()
    schedule = {
        "name": request.name,
        "spec": spec,
        "paused": request.paused,
        "next_at": _first_tick(spec, now, now),
        "created_by": caller,
        "created_at": now,
    }
    if not await svc.store.write(lambda tx: tx.insert_schedule(schedule)):
        raise Conflict(f"a schedule named {quoted(request.name)} exists already")
    if spec["trigger"].get("on_data") is not None:  # the data there now is not new: fire for the next version
        current = await _current_data(svc, spec["trigger"]["on_data"])
        await svc.store.write(lambda tx: tx.update_schedule(request.name, last_data=current))
    return await schedule_body(svc, request.name)


async def change(svc: Services, name: str, request: ScheduleChange) -> dict[str, Any]:
    found = await _found(svc, name)
    spec = _spec(svc, request, found["spec"])
    fields: dict[str, Any] = {"spec": spec}
    if request.paused is not None:
        fields["paused"] = request.paused
    now = time.time()
    if request.trigger is not None or request.paused is False:  # from now on: a resumed schedule does not catch up
        fields["next_at"] = _first_tick(spec, found["created_at"], now)
    await svc.store.write(lambda tx: tx.update_schedule(name, **fields))
    return await schedule_body(svc, name)


async def delete(svc: Services, name: str) -> dict[str, Any]:
    if not await svc.store.write(lambda tx: tx.delete_schedule(name)):
        raise NotFound(f"schedule {quoted(name)} not found")
    return {"name": name, "deleted": True}


async def _found(svc: Services, name: str) -> dict[str, Any]:
    found = await svc.store.read(svc.store.schedule_read, name)
    if found is None:
        raise NotFound(f"schedule {quoted(name)} not found")
    return found


async def schedule_body(svc: Services, name: str, *, fires: int = FIRES_SHOWN) -> dict[str, Any]:
    """A schedule as callers see it: its trigger, what it runs, when it fires next, its last fires."""
    found = await _found(svc, name)
    recent = await svc.store.read(svc.store.fires, name, limit=fires)
    return _body(found, recent)


def _body(found: dict[str, Any], recent: list[dict[str, Any]]) -> dict[str, Any]:
    spec = found["spec"]
    return {
        "name": found["name"],
        "trigger": spec["trigger"],
        "run": spec["run"],
        "promote": spec.get("promote"),
        "missed": spec.get("missed", "once"),
        "paused": found["paused"],
        "next_fire": None if found["paused"] else iso(found["next_at"]),
        "created_by": found["created_by"],
        "created_at": iso(found["created_at"]),
        "fires": [
            {
                "tick": iso(fire["tick"]) if fire["tick"] is not None else None,
                "key": fire["fire_key"],
                "fired_at": iso(fire["fired_at"]),
                "run": fire["job_id"],
                "status": fire["status"],
                "outcome": fire["outcome"],
            }
            for fire in recent
        ],
    }


async def list_schedules(svc: Services) -> dict[str, Any]:
    found = await svc.store.read(svc.store.schedules)
    bodies = []
    for schedule in found:
        recent = await svc.store.read(svc.store.fires, schedule["name"], limit=3)
        bodies.append(_body(schedule, recent))
    return {"schedules": bodies}


# -- firing -----------------------------------------------------------------------------------------
async def fire_due(svc: Services) -> int:
    """Fire every tick that has come (on any replica: the transaction makes each tick fire once); how many."""
    started: list[Job] = await svc.store.write(lambda tx: _fire_in(svc, tx))
    return await _started(svc, started)


def _fire_in(svc: Services, tx: Tx) -> list[Job]:
    now = tx.now()
    started = []
    for schedule in tx.due_schedules(now):
        spec, name = schedule["spec"], schedule["name"]
        trigger = Trigger.of(spec["trigger"])
        ticks: list[float] = []
        tick = schedule["next_at"]
        while tick is not None and tick <= now and len(ticks) < MOST_TICKS:
            ticks.append(tick)
            tick = trigger.next_after(tick, origin=schedule["created_at"])
        if tick is not None and tick <= now:  # more than MOST_TICKS behind: the rest are missed too
            tick = trigger.next_after(now, origin=schedule["created_at"])
        missed = [t for t in ticks if now - t > CATCH_UP]
        on_time = [t for t in ticks if now - t <= CATCH_UP]
        if missed:
            skipped = spec.get("missed", "once") == "skip"
            what = f"{len(missed)} tick(s) missed while no replica ran" + ("; skipped" if skipped else "; fired once")
            if skipped:
                tx.insert_fire(name, _key(missed[-1]), tick=missed[-1], job_id=None, status="skipped", outcome=what)
            else:
                on_time.insert(0, missed[-1])
                log.info("schedule %s: %s", name, what)
        for due in on_time:
            job = _run_job(spec, name, fire_key=_key(due), tick=due)
            note = what if missed and due == missed[-1] else None
            if tx.insert_fire(name, _key(due), tick=due, job_id=job.id, status="running", outcome=note):
                stored, created = svc.jobs.insert(tx, job)
                if created:
                    started.append(stored)
                    tx.append_event(topic="schedule", job_id=None, data=_fired(name, due, stored))
        tx.update_schedule(name, next_at=tick)
    return started


def _key(tick: float) -> str:
    return iso(tick) or f"{tick:.3f}"


def _run_job(spec: dict[str, Any], name: str, *, fire_key: str, tick: float | None) -> Job:
    run = {**spec["run"], "schedule": {"name": name, "fire": fire_key}}
    return new_job(
        kind="run",
        spec=run,
        fingerprint=run,
        idempotency_key=f"schedule-{name}-{fire_key}",  # one job per fire, whoever inserts it
        callback_url=None,
        created_by=f"schedule:{name}",
    )


def _fired(name: str, tick: float | None, job: Job) -> dict[str, Any]:
    return {"event": "schedule.fired", "schedule": name, "tick": iso(tick) if tick else None, "run": job.id}


async def _started(svc: Services, jobs: list[Job]) -> int:
    if jobs:
        svc.feed.changed()
    for job in jobs:
        log.info("schedule %s fired: run job %s", job.spec.get("schedule", {}).get("name"), job.id)
        svc.worker.start(job)
    return len(jobs)


async def fire_on_data(svc: Services) -> int:
    """Fire data-triggered schedules whose path has a version they have not fired for; how many."""
    started: list[Job] = []
    for schedule in await svc.store.read(svc.store.schedules):
        path = schedule["spec"]["trigger"].get("on_data")
        if path is None or schedule["paused"]:
            continue
        current = await _current_data(svc, path)
        if current is None or current == schedule["last_data"]:
            continue
        started += await svc.store.write(functools.partial(_fire_data, svc, schedule=schedule, digest=current))
    return await _started(svc, started)


def _fire_data(svc: Services, tx: Tx, *, schedule: dict[str, Any], digest: str) -> list[Job]:
    found = tx.schedule(schedule["name"], lock=True)
    if found is None or found["last_data"] == digest or found["paused"]:
        return []  # another replica fired it meanwhile, or it changed
    name, spec = found["name"], found["spec"]
    tx.update_schedule(name, last_data=digest)
    key = f"data:{digest}"
    job = _run_job({**spec, "run": {**spec["run"], "data_version": digest}}, name, fire_key=key, tick=None)
    if not tx.insert_fire(name, key, tick=None, job_id=job.id, status="running"):
        return []
    stored, created = svc.jobs.insert(tx, job)
    if created:
        tx.append_event(topic="schedule", job_id=None, data={**_fired(name, None, stored), "data_version": digest})
    return [stored] if created else []


async def _current_data(svc: Services, path: str) -> str | None:
    found = await svc.calls(svc.backend.current_data, path)
    return found.digest if found is not None else None


# -- after the run ----------------------------------------------------------------------------------
async def follow_up(svc: Services) -> int:
    """Record how each fired run ended and, with `promote`, offer its version to the alias; how many."""
    await _prune(svc)
    done = 0
    for fire in await svc.store.read(svc.store.fires, status="running", limit=200):
        job = await svc.store.read(svc.store.get, fire["job_id"]) if fire["job_id"] else None
        if job is not None and not is_terminal(job.status):
            continue
        schedule = await svc.store.read(svc.store.schedule_read, fire["schedule"])
        status, outcome = await _outcome(svc, schedule, fire, job)
        await svc.store.write(functools.partial(_record, fire=fire, status=status, outcome=outcome))
        svc.feed.changed()
        done += 1
    return done


_pruned = [0.0]


async def _prune(svc: Services) -> None:
    """Once a minute: fires past the retention window, and beyond the newest FIRES_KEPT of a schedule, go."""
    if time.time() - _pruned[0] < 60:
        return
    _pruned[0] = time.time()
    days = svc.settings.retention_days
    before = time.time() - days * 86400 if days else None
    await svc.store.write(lambda tx: tx.prune_fires(before=before, keep=FIRES_KEPT))


def _record(tx: Tx, *, fire: dict[str, Any], status: str, outcome: str) -> None:
    """How a fire ended and, for a failure (the run, or its promotion refused), a schedule.failed event, at once."""
    outcome = f"{fire['outcome']}; {outcome}" if fire.get("outcome") else outcome  # a missed-ticks note stays
    tx.update_fire(fire["schedule"], fire["fire_key"], status=status, outcome=outcome)
    if status in ("failed", "refused"):
        data = {"event": "schedule.failed", "schedule": fire["schedule"], "run": fire["job_id"], "why": outcome}
        tx.append_event(topic="schedule", job_id=None, data=data)


async def _outcome(
    svc: Services, schedule: dict[str, Any] | None, fire: dict[str, Any], job: Job | None
) -> tuple[str, str]:
    if job is None:
        return "failed", "its run job is gone (removed by the retention sweep?)"
    body = render(job, svc.backend.name)
    if job.status != "Completed":
        return (
            "failed",
            f"run {job.id} ended {job.status}: " + ((job.error or "").splitlines() or ["no error recorded"])[0][:300],
        )
    made = body.get("model_version")
    promote = (schedule or {}).get("spec", {}).get("promote")
    if not made or not promote:
        return "completed", f"run {job.id} completed" + (f"; version {made['version']}" if made else "")
    asked = promotions.Asked(
        promote["alias"],
        version=int(made["version"]),
        reason=f"schedule {fire['schedule']}, run {job.id}",
        gate=promote.get("gate"),
        key=f"schedule:{fire['schedule']}:{fire['fire_key']}",
    )
    try:
        result, answer = await promotions.promote(svc, made["name"], asked, caller=f"schedule:{fire['schedule']}")
    except GateRefused as exc:
        return "refused", f"version {made['version']} kept out of {promote['alias']}: {exc}"
    except (AmlError, InvalidInput) as exc:
        return "failed", f"promoting version {made['version']}: {exc}"
    if result == "pending":
        return "approval", f"version {made['version']} to {promote['alias']} waits for approval {answer['id']}"
    return "promoted", f"version {made['version']} is {promote['alias']} now"
