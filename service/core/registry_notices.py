"""What in the event feed is worth telling people, and how it reads: one Notice per happening.

The feed's rows (service/core/events.py) are the source: a run job's event becomes `run.failed`
when it fails and `model.registered` when it carries a model version; the `alias` and `approval`
topics (service/promotions.py) become `alias.changed`, `approval.requested` and `approval.decided`.
Each notice has a key that names the happening, not the row: a run's later events repeat its
model version, but `model.registered:<model>:<version>` is told once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amllib.settings import Settings


@dataclass(frozen=True)
class Notice:
    event: str
    key: str
    model: str | None
    headline: str
    lines: list[str]
    link: str | None
    data: dict[str, Any]


def notices(settings: Settings, seq: int, topic: str, data: dict[str, Any]) -> list[Notice]:
    """The notices one event row makes (most make none)."""
    event = data.get("event")
    if topic == "run":
        return _run(settings, data)
    if topic == "deploy":
        return _deploy(settings, data)
    if topic == "schedule" and event in ("schedule.fired", "schedule.failed"):
        return [_schedule(settings, seq, data)]
    if topic == "alias" and event == "alias.changed":
        return [_alias_changed(settings, seq, data)]
    if topic == "approval" and event == "approval.requested":
        return [_approval(settings, data, requested=True)]
    if topic == "approval" and event == "approval.decided":
        return [_approval(settings, data, requested=False)]
    return []


def page(settings: Settings, path: str) -> str | None:
    """A dashboard page as a link people can follow (AZML_PUBLIC_URL set), else None."""
    return f"{settings.public_url.rstrip('/')}{path}" if settings.public_url else None


def _run(settings: Settings, run: dict[str, Any]) -> list[Notice]:
    found = []
    link = page(settings, f"/ui/runs/{run['id']}")
    what = f"{run.get('script')}, experiment {run.get('experiment')}"
    if run.get("status") == "Failed":
        error = "\n".join((run.get("error") or "no error was recorded").splitlines()[:3])
        found.append(
            Notice(
                event="run.failed",
                key=f"run.failed:{run['id']}",
                model=run.get("model"),
                headline=f"Run {run['id']} failed",
                lines=[f"{what}, by {run.get('created_by') or 'someone'}", f"Error: {error}"],
                link=link,
                data=run,
            )
        )
    made = run.get("model_version")
    if made and made.get("name") and made.get("version") is not None:
        metrics = {k: v for k, v in (run.get("metrics") or {}).items() if isinstance(v, int | float)}
        figures = ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:6])
        found.append(
            Notice(
                event="model.registered",
                key=f"model.registered:{made['name']}:{made['version']}",
                model=made["name"],
                headline=f"Model {made['name']} version {made['version']} registered",
                lines=[f"From run {run['id']} ({what})", *([f"Metrics: {figures}"] if figures else [])],
                link=page(settings, f"/ui/models/{made['name']}") or link,
                data={"model": made["name"], "version": made["version"], "run": run},
            )
        )
    return found


def _deploy(settings: Settings, job: dict[str, Any]) -> list[Notice]:
    """A deployment or rollback that ended: where traffic is now, or why it stayed where it was."""
    status, endpoint = job.get("status"), job.get("endpoint")
    link = page(settings, f"/ui/endpoints/{endpoint}")
    what = "Rollback" if job.get("action") == "rollback" else "Deployment"
    by = f"By {job.get('created_by')}" + (f" ({job['trigger']})" if job.get("trigger") else "")
    if status == "Failed":
        error = "\n".join((job.get("error") or "no error was recorded").splitlines()[:3])
        headline = f"{what} to {endpoint} failed: traffic stayed where it was"
        return [
            Notice(
                "deployment.failed",
                f"deployment.failed:{job['id']}",
                job.get("model"),
                headline,
                [f"{job.get('model')} version {job.get('version')}", by, f"Error: {error}"],
                link,
                job,
            )
        ]
    if status == "Completed":
        shares = ", ".join(f"{slot} {share}%" for slot, share in (job.get("traffic") or {}).items())
        headline = f"{endpoint} now serves {job.get('model')} version {job.get('version')} ({shares})"
        return [
            Notice(
                "deployment.changed",
                f"deployment.changed:{job['id']}",
                job.get("model"),
                headline,
                [f"{what}, {by.lower()}"],
                link,
                job,
            )
        ]
    return []


def _schedule(settings: Settings, seq: int, data: dict[str, Any]) -> Notice:
    name, run = data.get("schedule"), data.get("run")
    fired = data.get("event") == "schedule.fired"
    when = data.get("tick") or (f"data {data['data_version']}" if data.get("data_version") else "")
    headline = f"Schedule {name} fired" + (f" ({when})" if when else "") if fired else f"Schedule {name} failed"
    lines = [f"Run {run}" if run else "No run"] + ([] if fired else [f"Why: {data.get('why')}"])
    return Notice(
        event=str(data.get("event")),
        key=f"{data.get('event')}:{name}:{seq}",
        model=None,
        headline=headline,
        lines=lines,
        link=page(settings, f"/ui/runs/{run}") if run else page(settings, "/ui/schedules"),
        data=data,
    )


def _figures(gate: dict[str, Any] | None) -> str | None:
    """A gate's verdict as one line: the candidate and the holder side by side."""
    if not gate or not gate.get("gate"):
        return None
    rule = gate["gate"]
    line = f"Gate {rule.get('metric')} {rule.get('direction')} by {rule.get('min_delta')}: "
    line += f"candidate {gate.get('candidate')}"
    if gate.get("holder_version") is not None:
        line += f" against version {gate['holder_version']}'s {gate.get('holder')}"
    return line


def _alias_changed(settings: Settings, seq: int, data: dict[str, Any]) -> Notice:
    model, alias, version = data.get("model"), data.get("alias"), data.get("version")
    before = data.get("holder_before")
    moved = f"now version {version}" if version is not None else "removed"
    headline = f"{model}: {alias} {moved}" + (f" (was version {before})" if before is not None else "")
    who = f"By {data.get('by')}" + (f", approved by {data['approved_by']}" if data.get("approved_by") else "")
    lines = [who, *([f"Reason: {data['reason']}"] if data.get("reason") else [])]
    figures = _figures(data.get("gate"))
    return Notice(
        event="alias.changed",
        key=f"alias.changed:{seq}",
        model=model,
        headline=headline,
        lines=[*lines, *([figures] if figures else [])],
        link=page(settings, f"/ui/models/{model}"),
        data=data,
    )


def _approval(settings: Settings, data: dict[str, Any], *, requested: bool) -> Notice:
    model, alias, version = data.get("model"), data.get("alias"), data.get("version")
    move = f"{alias} to version {version}" if version is not None else f"removing {alias}"
    if requested:
        headline = f"Approval asked: {model}, {move}"
        lines = [
            f"Asked by {data.get('requested_by')}" + (f": {data['reason']}" if data.get("reason") else ""),
            *([figures] if (figures := _figures(data.get("verdict"))) else []),
            f"Someone else approves: `approve {data.get('id')}` in chat, or the Approvals page",
        ]
    else:
        headline = f"Approval {data.get('status')}: {model}, {move}"
        lines = [f"Decided by {data.get('decided_by')}, asked by {data.get('requested_by')}"]
        if data.get("note"):
            lines.append(f"Note: {data['note']}")
    return Notice(
        event="approval.requested" if requested else "approval.decided",
        key=f"{'approval.requested' if requested else 'approval.decided'}:{data.get('id')}",
        model=model,
        headline=headline,
        lines=lines,
        link=page(settings, "/ui/approvals"),
        data=data,
    )
