"""What any caller may do with a model's aliases, whatever way it came in (HTTP, the dashboard, a chat command).

Transport-free like actions.py: the rules are amllib/promotion.py's (one compare-and-set move through
its gate, history, archived versions); this adds what only a service has. A gate set for an alias in
AZML_ALIAS_GATES applies whoever asks. An alias in AZML_PROTECTED_ALIASES moves only once someone
other than the requester approves: the request is recorded (202, an approval), its gate judged at
once (a move the gate refuses is never asked for) and again when it is approved. A principal is one
name across every door: a token's name, the token behind a dashboard session, or a chat user
(`slack:U123`). Every change is an event on GET /events (topics `alias` and `approval`).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from amllib.errors import AmlError, BackendUnavailable, Conflict, ModelNotFound, NotFound, quoted
from amllib.promotion import (
    Change,
    Gate,
    GateRefused,
    Verdict,
    apply,
    candidate_version,
    check_alias,
    judge,
    set_archived,
)
from amllib.times import iso
from service.actions import Services
from service.errors import Forbidden

log = logging.getLogger("service")


@dataclass(frozen=True)
class Asked:
    """A move someone asked for: the version it names (one of three ways), why, and an optional gate."""

    alias: str
    version: int | None = None
    run_id: str | None = None
    use_best: bool = False
    remove: bool = False
    reason: str | None = None
    gate: dict[str, Any] | None = None
    key: str | None = None  # names the move (a schedule's fire): asking again never moves it or asks twice


def alias_body(name: str, alias: str, held: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": name,
        "alias": alias,
        "version": int(held["version"]),
        "since": iso(held.get("since")),
        "by": held.get("by"),
        "reason": held.get("reason"),
    }


def approval_body(approval: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in approval.items() if not k.endswith("_at")},
        "requested_at": iso(approval["requested_at"]),
        "expires_at": iso(approval["expires_at"]),
        "decided_at": iso(approval.get("decided_at")),
    }


async def _known(svc: Services, name: str) -> None:
    if not await svc.calls(svc.backend.list_model_versions, name):
        raise ModelNotFound(f"model {quoted(name)} not found")


async def aliases(svc: Services, name: str) -> dict[str, Any]:
    await _known(svc, name)
    book = await svc.calls(svc.backend.read_aliases, name)
    held = [alias_body(name, alias, found) for alias, found in sorted(book.aliases.items())]
    return {"model": name, "aliases": held, "archived": sorted(book.archived)}


async def history(svc: Services, name: str) -> dict[str, Any]:
    await _known(svc, name)
    book = await svc.calls(svc.backend.read_aliases, name)
    changes = [{**change, "at": iso(change.get("at"))} for change in reversed(book.history)]
    return {"model": name, "history": changes}


def _gate(svc: Services, alias: str, given: dict[str, Any] | None) -> Gate | None:
    """The request's gate, else the alias's own (AZML_ALIAS_GATES)."""
    if given is not None:
        return Gate.of(given)
    configured = svc.settings.alias_gate_map.get(alias)
    return Gate.parse(configured) if configured else None


async def promote(svc: Services, name: str, asked: Asked, *, caller: str) -> tuple[str, dict[str, Any]]:
    """("moved", the alias) or ("pending", the approval asked for); GateRefused (409) names both figures."""
    check_alias(asked.alias)
    await _known(svc, name)
    gate = _gate(svc, asked.alias, asked.gate)
    version = None
    if not asked.remove:
        candidate = await svc.calls(
            candidate_version, svc.backend, name, version=asked.version, run_id=asked.run_id, use_best=asked.use_best
        )
        version = candidate.version
    if asked.alias in svc.settings.protected_alias_set:
        return "pending", await _ask_approval(svc, name, asked, version, gate, caller=caller)
    change = Change(asked.alias, version, by=caller, reason=asked.reason, key=asked.key)
    book, verdict = await svc.calls(apply, svc.backend, name, change, gate=gate)
    if verdict.reason == "made already":
        held = book.aliases.get(asked.alias)
        return "moved", alias_body(name, asked.alias, held) if held else {"model": name, "alias": asked.alias}
    await _told(svc, "alias", _moved_event(name, change, verdict))
    if version is None:
        return "moved", {"model": name, "alias": asked.alias, "version": None, "removed": True}
    return "moved", alias_body(name, asked.alias, book.aliases[asked.alias])


async def check(svc: Services, name: str, asked: Asked) -> dict[str, Any]:
    """What PUT would do now, changing nothing: the candidate and the holder side by side, the gate's verdict,
    and whether the move would be made, asked for approval or refused (the dashboard shows it before asking)."""
    check_alias(asked.alias)
    await _known(svc, name)
    gate = _gate(svc, asked.alias, asked.gate)
    candidate = await svc.calls(
        candidate_version, svc.backend, name, version=asked.version, run_id=asked.run_id, use_best=asked.use_best
    )
    book = await svc.calls(svc.backend.read_aliases, name)
    holder = book.holder(asked.alias)
    if candidate.version in book.archived:
        verdict = Verdict(False, None, holder_version=holder, reason=f"version {candidate.version} is archived")
    else:
        verdict = await svc.calls(judge, svc.backend, name, candidate, gate, holder)
    protected = asked.alias in svc.settings.protected_alias_set
    return {
        "model": name,
        "alias": asked.alias,
        "candidate": {"version": candidate.version, "run_id": candidate.run_id, "figure": verdict.candidate},
        "holder": None if holder is None else {"version": holder, "figure": verdict.holder},
        "verdict": verdict.as_dict(),
        "protected": protected,
        "outcome": "refused" if not verdict.passed else "asks_approval" if protected else "moves",
    }


async def _ask_approval(
    svc: Services, name: str, asked: Asked, version: int | None, gate: Gate | None, *, caller: str
) -> dict[str, Any]:
    verdict = None
    if version is not None:  # refused by the gate now: nobody is asked to approve what cannot pass
        book = await svc.calls(svc.backend.read_aliases, name)
        candidate = await svc.calls(svc.backend.resolve_version, name, version=version)
        verdict = await svc.calls(judge, svc.backend, name, candidate, gate, book.holder(asked.alias))
        if not verdict.passed:
            raise GateRefused(verdict)
    now = time.time()
    approval_id = "appr_" + (hashlib.sha256(asked.key.encode()).hexdigest() if asked.key else uuid.uuid4().hex)[:20]
    approval = {
        "id": approval_id,
        "model": name,
        "alias": asked.alias,
        "version": version,
        "status": "pending",
        "requested_by": caller,
        "reason": asked.reason,
        "gate": gate.as_dict() if gate else None,
        "requested_at": now,
        "expires_at": now + svc.settings.approval_hours * 3600,
        "decided_by": None,
        "decided_at": None,
        "note": None,
    }
    if not await svc.store.write(lambda tx: tx.insert_approval(approval)):  # asked before under the same key
        found = await svc.store.read(svc.store.approval, approval_id)
        return approval_body(found or approval)
    body = approval_body(approval)
    told = {"event": "approval.requested", **body, "verdict": verdict.as_dict() if verdict and verdict.gate else None}
    await _told(svc, "approval", told)  # the verdict: the candidate and the holder side by side, for the notices
    return body


async def decide(svc: Services, approval_id: str, *, approve: bool, caller: str, note: str | None) -> dict[str, Any]:
    """Approve (the move is made now, its gate judged again) or reject a pending approval, once; never the
    requester's own (403)."""
    found = await svc.store.read(svc.store.approval, approval_id)
    if found is None:
        raise NotFound(f"approval {quoted(approval_id)} not found")
    if found["requested_by"] == caller:
        raise Forbidden(f"{caller} asked for this move: someone else must approve or reject it")
    # Approving is two steps: recorded as `approving` (decided, by whom), then the move is made and the
    # approval recorded `approved`. A replica killed between them leaves `approving`, which resume_approvals
    # carries out (the move is keyed by the approval's id, so it is never made twice).
    status = "approving" if approve else "rejected"
    decided = await svc.store.write(lambda tx: tx.decide_approval(approval_id, status=status, by=caller, note=note))
    if decided is None:
        now = await svc.store.read(svc.store.approval, approval_id)
        state = "expired" if now and now["status"] == "pending" else (now or {}).get("status")
        raise Conflict(f"approval {approval_id} is {state} already: nothing to decide")
    if approve:
        decided = await _carry_out(svc, decided)
    else:
        await _told(svc, "approval", {"event": "approval.decided", **approval_body(decided)})
    return approval_body(decided)


async def _carry_out(svc: Services, approval: dict[str, Any]) -> dict[str, Any]:
    """Make an approved move (its gate judged again) and record the approval `approved`, or `failed` with why
    (the gate refuses now, the version went). A backend that cannot be reached leaves it `approving`."""
    approval_id = approval["id"]
    gate = Gate.of(approval["gate"]) if approval["gate"] else None
    change = Change(
        approval["alias"],
        approval["version"],
        by=approval["requested_by"],
        reason=approval["reason"],
        approved_by=approval["decided_by"],
        key=approval_id,
    )
    try:
        _, verdict = await svc.calls(apply, svc.backend, approval["model"], change, gate=gate)
    except BackendUnavailable:
        raise  # tried again by resume_approvals
    except AmlError as exc:
        why = str(exc)
        failed = await svc.store.write(lambda tx: tx.note_approval(approval_id, status="failed", note=why))
        await _told(svc, "approval", {"event": "approval.decided", **approval_body(failed)})
        raise
    done = await svc.store.write(lambda tx: tx.finish_approval(approval_id, status="approved"))
    if verdict.reason != "made already":
        await _told(svc, "alias", _moved_event(approval["model"], change, verdict))
    if done is not None:  # None: another replica finished it first and told it
        await _told(svc, "approval", {"event": "approval.decided", **approval_body(done)})
    return done or approval


async def resume_approvals(svc: Services) -> int:
    """Carry out approvals left `approving` (a replica died mid-move, or the backend was away); how many."""
    carried = 0
    for approval in await svc.store.read(svc.store.approvals, status="approving"):
        try:
            await _carry_out(svc, approval)
            carried += 1
        except AmlError as exc:
            log.warning("approval %s: the approved move is not made yet: %s", approval["id"], exc)
    return carried


async def approvals(svc: Services, *, status: str | None) -> dict[str, Any]:
    found = await svc.store.read(svc.store.approvals, status=status)
    return {"approvals": [approval_body(a) for a in found]}


async def approval(svc: Services, approval_id: str) -> dict[str, Any]:
    found = await svc.store.read(svc.store.approval, approval_id)
    if found is None:
        raise NotFound(f"approval {quoted(approval_id)} not found")
    return approval_body(found)


async def change_version(
    svc: Services,
    name: str,
    version: int,
    *,
    description: str | None,
    tags: dict[str, Any] | None,
    archived: bool | None,
    caller: str,
) -> dict[str, Any]:
    """Notes, tags, archive/restore of one version."""
    found = await svc.calls(svc.backend.resolve_version, name, version=version)
    if description is not None or tags is not None:
        found = await svc.calls(svc.backend.update_version, name, version, description=description, tags=tags)
    book = await svc.calls(svc.backend.read_aliases, name)
    if archived is not None:
        book = await svc.calls(set_archived, svc.backend, name, version, archived)
        await _told(
            svc,
            "alias",
            {
                "event": "version.archived" if archived else "version.restored",
                "model": name,
                "version": version,
                "by": caller,
            },
        )
    return {
        **found.__dict__,
        "created_at": iso(found.created_at),
        "archived": version in book.archived,
        "aliases": sorted(a for a, held in book.aliases.items() if int(held["version"]) == version),
    }


def _moved_event(name: str, change: Change, verdict: Verdict) -> dict[str, Any]:
    return {
        "event": "alias.changed",
        "model": name,
        "alias": change.alias,
        "version": change.version,
        "holder_before": verdict.holder_version,
        "by": change.by,
        "approved_by": change.approved_by,
        "reason": change.reason,
        "gate": verdict.as_dict() if verdict.gate else None,
    }


async def _told(svc: Services, topic: str, data: dict[str, Any]) -> None:
    """An event on the live feed (GET /events), as job changes are."""
    await svc.store.write(lambda tx: tx.append_event(topic=topic, job_id=None, data=data))
    svc.feed.changed()
