"""One command grammar for every chat platform, carried out by the same functions as the HTTP API.

    train [script=… experiment=… datapath=… model=… estimators=N key=value …]
    status <run>   runs [N] [status=…]   logs <run> [N]   cancel <run>   models   best [model]   help
    aliases [model]   promote <version> to <alias> [reason…]   approve <id> [note…]   reject <id> [note…]
    endpoints   deploy <model>@<alias>|<model>:<version> to <endpoint> [traffic=N]   rollback <endpoint>
    schedules   pause <schedule>   resume <schedule>

A platform module (slack.py, teams.py, mattermost.py) verifies and parses its request
into a ChatRequest, calls handle(), and renders the Reply its own way. Writes (train,
cancel) are for AZML_CHATOPS_WRITERS only. A mistake answers with a short message
in the chat, never an error page; the message is the API's own.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from amllib.errors import AmlError, InvalidInput, quoted
from amllib.fetch import BEST_BY
from amllib.names import check_name
from amllib.settings import Settings
from service import deployments, promotions, schedules
from service.actions import Services, create_job, find, page, request_cancel, run_spec
from service.core.job_kinds import Notify
from service.core.schemas import DeployRequest, RunRequest, ScheduleChange, render, run_title
from service.core.store import Job
from service.errors import validation_detail

log = logging.getLogger("service")
USAGE = (
    "Commands: `train [script=… experiment=… datapath=… model=… estimators=N key=value …]`, "
    "`status <run>`, `runs [N] [status=…]`, `logs <run> [N]`, `cancel <run>`, `models`, `best [model]`, "
    "`aliases [model]`, `promote <version> to <alias> [reason]` (`model=<name>` for another model), "
    "`approve <id>`, `reject <id>`, `endpoints`, `deploy <model>@<alias>|<model>:<version> to <endpoint> "
    "[traffic=N]`, `rollback <endpoint>`, `schedules`, `pause <schedule>`, `resume <schedule>`, `help`."
)
TRAIN_FIELDS = ("script", "experiment", "datapath", "model", "compute", "estimators")
WRITES = frozenset({"train", "cancel", "promote", "approve", "reject", "deploy", "rollback", "pause", "resume"})


@dataclass(frozen=True)
class ChatRequest:
    """A command as any platform delivers it, after the platform's own checks."""

    platform: str  # slack, teams, mattermost
    user_id: str
    text: str
    retry_key: str  # the same for a platform's retry of one command
    notify: Notify | None = None  # where the completion notice goes


@dataclass
class Reply:
    """What to say: a headline, detail lines, and the run it is about (for a link)."""

    text: str
    lines: list[str] = field(default_factory=list)
    job: dict[str, Any] | None = None
    ok: bool = True


_REFUSALS: dict[str, float] = {}
REFUSAL_LOG_SECONDS = 60.0


def refused(platform: str, reason: str) -> None:
    """Log a refused chat request once a minute per platform and reason: an operator sees a wrong secret,
    an attacker's flood does not flood the log."""
    now = time.monotonic()
    key = f"{platform}:{reason}"
    if now - _REFUSALS.get(key, -REFUSAL_LOG_SECONDS) >= REFUSAL_LOG_SECONDS:
        _REFUSALS[key] = now
        log.warning(
            "chat request from %s refused: %s (is the platform's secret or token configured right?)", platform, reason
        )


def run_link(svc: Services | Settings, job_id: str) -> str:
    """The dashboard's page of a run (AZML_PUBLIC_URL + /ui/runs/{id}), or the id alone."""
    base = (svc if isinstance(svc, Settings) else svc.settings).public_url
    return f"{base.rstrip('/')}/ui/runs/{job_id}" if base else job_id


def may_write(svc: Services, chat: ChatRequest) -> bool:
    """Writers are named `platform:id`: a bare id would let a Teams user named `slack:U…` pass as a Slack writer."""
    writers = svc.settings.chatops_writer_set
    return "*" in writers or f"{chat.platform}:{chat.user_id}" in writers


async def handle(svc: Services, chat: ChatRequest) -> Reply:
    """Carry out one command; every failure becomes a Reply saying what was wrong."""
    try:
        words = shlex.split(chat.text)
    except ValueError as exc:
        return Reply(f"Could not read that: {exc}. {USAGE}", ok=False)
    if not words:
        return Reply(USAGE)
    command, rest = words[0].lower(), words[1:]
    if command in WRITES and not may_write(svc, chat):
        return Reply(
            f"You may not `{command}` here: ask an admin to add `{chat.platform}:{chat.user_id}` "
            "to AZML_CHATOPS_WRITERS.",
            ok=False,
        )
    handler = COMMANDS.get(command)
    if handler is None:
        return Reply(f"Unknown command {quoted(command, 30)}. {USAGE}", ok=False)
    try:
        return await handler(svc, chat, rest)
    except (RequestValidationError, ValidationError) as exc:
        errors = exc if isinstance(exc, RequestValidationError) else RequestValidationError(exc.errors())
        detail, _ = validation_detail(errors)
        return Reply(f"That `{command}` was not valid: {detail}", ok=False)
    except AmlError as exc:
        return Reply(f"`{command}` failed: {exc}", ok=False)


def _pairs(words: list[str]) -> tuple[list[str], dict[str, str]]:
    plain, named = [], {}
    for word in words:
        name, sep, value = word.partition("=")
        if sep and name:
            named[name] = value
        else:
            plain.append(word)
    return plain, named


def _count(value: str | None, default: int, most: int) -> int:
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= most:
        raise InvalidInput(f"give a number from 1 to {most}, not {quoted(value, 20)}")
    return int(value)


def summary(svc: Services | Settings, job: Job | dict[str, Any]) -> list[str]:
    """The lines every answer about a run shares: status, headline metrics, model version, link."""
    backend = svc.backend if isinstance(svc, Settings) else svc.backend.name
    body = job if isinstance(job, dict) else render(job, backend)
    lines = [f"Run {run_title(body)} ({body['script']}, experiment {body['experiment']}): {body['status']}"]
    metrics = {k: v for k, v in (body.get("metrics") or {}).items() if isinstance(v, int | float)}
    if metrics:
        lines.append("Metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:6]))
    if body.get("model_version"):
        lines.append(f"Model: {body['model_version']['name']} version {body['model_version']['version']}")
    if body.get("error"):
        lines.append("Error: " + "\n".join(body["error"].splitlines()[:3]))
    lines.append(run_link(svc, body["id"]))
    return lines


async def train(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    plain, named = _pairs(words)
    if plain:
        raise InvalidInput(f"train takes name=value words only, not {quoted(plain[0], 40)}")
    fields: dict[str, Any] = {k: named.pop(k) for k in TRAIN_FIELDS if k in named}
    if "estimators" in fields:
        fields["estimators"] = _count(fields["estimators"], 1, 100_000)
    request = RunRequest.model_validate({**fields, "args": named})
    spec = run_spec(svc, request)
    if chat.notify is not None:
        spec["notify"] = chat.notify
    retry = hashlib.sha256(chat.retry_key.encode()).hexdigest()[:32]
    job, created = await create_job(
        svc,
        kind="run",
        spec=spec,
        fingerprint={"chat": chat.retry_key},
        idempotency_key=f"chat:{chat.platform}:{retry}",
        callback_url=None,
        created_by=f"{chat.platform}:{chat.user_id}",
    )
    verb = "Started" if created else "Already started"
    body = render(job, svc.backend.name)
    return Reply(f"{verb} run {run_title(body)}: {job.status}", summary(svc, body)[1:], job={"id": job.id})


async def status(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    if len(words) != 1:
        raise InvalidInput("usage: status <run>")
    job = await find(svc, words[0], "run")
    lines = summary(svc, job)
    return Reply(lines[0], lines[1:], job={"id": job.id})


async def runs(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    plain, named = _pairs(words)
    limit = _count(plain[0] if plain else None, 10, 50)
    found = await page(
        svc, "run", status=named.get("status"), experiment=named.get("experiment"), cursor=None, limit=limit
    )
    if not found["items"]:
        return Reply("No runs.")
    lines = []
    for job in found["items"]:
        accuracy = job["metrics"].get("accuracy")
        scored = f" accuracy {accuracy:.4g}" if isinstance(accuracy, int | float) else ""
        lines.append(f"{run_title(job)} {job['status']} {job['script']}{scored} {run_link(svc, job['id'])}")
    return Reply(f"The latest {len(lines)} runs:", lines)


async def logs(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    if not 1 <= len(words) <= 2:
        raise InvalidInput("usage: logs <run> [N]")
    job = await find(svc, words[0], "run")
    count = _count(words[1] if len(words) > 1 else None, 20, 200)
    text = ""
    if job.backend_run_id is not None:
        text = await svc.calls(svc.backend.get_log, job.backend_run_id, tail=count)
    lines = ["```", text.rstrip()[-2800:] or "(nothing yet)", "```", run_link(svc, job.id)]
    return Reply(f"Last {count} lines of run {run_title(render(job, svc.backend.name))}:", lines, job={"id": job.id})


async def cancel(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    if len(words) != 1:
        raise InvalidInput("usage: cancel <run>")
    job = await request_cancel(svc, await find(svc, words[0], "run"))
    title = run_title(render(job, svc.backend.name))
    return Reply(f"Asked run {title} to stop.", [run_link(svc, job.id)], job={"id": job.id})


async def models(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    names = await svc.calls(svc.backend.list_models)
    return Reply("Models: " + (", ".join(names) if names else "none registered yet."))


async def best(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    name = words[0] if words else svc.settings.model
    if not name:
        raise InvalidInput("usage: best <model> (there is no AZML_MODEL default)")
    check_name(name, what="model")
    version = await svc.calls(svc.backend.resolve_version, name, best_by=BEST_BY)
    accuracy = version.tags.get(BEST_BY)
    lines = [f"accuracy {accuracy}" if accuracy is not None else "no version has an accuracy tag: the latest"]
    if version.run_id:
        lines.append(f"from run {version.run_id} {run_link(svc, version.run_id)}")
    return Reply(f"Best {name}: version {version.version}", lines)


def _model_of(svc: Services, words: list[str]) -> tuple[str, list[str]]:
    """The model a command names (`model=<name>` anywhere, else AZML_MODEL) and the other words."""
    named = [w.removeprefix("model=") for w in words if w.startswith("model=")]
    rest = [w for w in words if not w.startswith("model=")]
    name = named[0] if named else svc.settings.model
    if not name:
        raise InvalidInput("name the model: model=<name> (there is no AZML_MODEL default)")
    return check_name(name, what="model"), rest


async def aliases(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    name, _ = _model_of(svc, [f"model={words[0]}"] if len(words) == 1 and "=" not in words[0] else words)
    found = await promotions.aliases(svc, name)
    lines = [f"`{a['alias']}` → version {a['version']} (since {a['since']}, by {a['by']})" for a in found["aliases"]]
    return Reply(f"Aliases of {name}:" if lines else f"{name} has no aliases yet.", lines)


async def promote(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    name, rest = _model_of(svc, words)
    if len(rest) < 3 or rest[1] != "to" or not rest[0].isdigit():
        raise InvalidInput("usage: promote <version> to <alias> [reason…] (model=<name> for another model)")
    asked = promotions.Asked(rest[2], version=int(rest[0]), reason=" ".join(rest[3:]) or None)
    outcome, body = await promotions.promote(svc, name, asked, caller=f"{chat.platform}:{chat.user_id}")
    if outcome == "pending":
        held = await promotions.aliases(svc, name)
        holder = next((a["version"] for a in held["aliases"] if a["alias"] == asked.alias), None)
        lines = [
            f"candidate: version {asked.version}; now: {'version ' + str(holder) if holder else 'unset'}",
            f"someone else approves with `approve {body['id']}` (or `reject {body['id']}`)",
        ]
        return Reply(f"`{asked.alias}` of {name} is protected: approval {body['id']} asked.", lines)
    return Reply(f"{name}@{asked.alias} is version {body['version']}.")


async def approve(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    return await _decide(svc, chat, words, approve=True)


async def reject(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    return await _decide(svc, chat, words, approve=False)


async def _decide(svc: Services, chat: ChatRequest, words: list[str], *, approve: bool) -> Reply:
    if not words:
        raise InvalidInput(f"usage: {'approve' if approve else 'reject'} <approval id> [note…]")
    caller = f"{chat.platform}:{chat.user_id}"
    body = await promotions.decide(svc, words[0], approve=approve, caller=caller, note=" ".join(words[1:]) or None)
    verb = "Approved" if approve else "Rejected"
    moved = f": {body['model']}@{body['alias']} is version {body['version']}" if approve else ""
    return Reply(f"{verb} {body['id']}{moved}.")


async def endpoints(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    found = (await deployments.list_endpoints(svc))["endpoints"]
    lines = [
        f"`{e['endpoint']}` ({e['health']}): "
        + ", ".join(f"{d['model']} v{d['version']} {d['traffic']}% ({d['slot']})" for d in e["deployments"])
        + (f"; follows {e['follow']['alias']}" if e["follow"] else "")
        for e in found
    ]
    return Reply("Endpoints:" if lines else "No endpoints yet: `deploy <model>:<version> to <endpoint>`.", lines)


async def deploy(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    plain, named = _pairs(words)
    if len(plain) != 3 or plain[1] != "to":
        raise InvalidInput("usage: deploy <model>@<alias> or <model>:<version> to <endpoint> [traffic=N]")
    target, endpoint = plain[0], plain[2]
    model, sep, which = target.partition("@") if "@" in target else target.partition(":")
    if not sep or not which or (sep == ":" and not which.isdigit()):
        raise InvalidInput(f"name the version as <model>@<alias> or <model>:<version>, not {quoted(target, 40)}")
    fields: dict[str, Any] = {"endpoint": endpoint, "model": model or svc.settings.model}
    fields["alias" if sep == "@" else "version"] = which if sep == "@" else int(which)
    if "traffic" in named:
        fields["traffic"] = _count(named.pop("traffic"), 100, 100)
    if named:
        raise InvalidInput(f"deploy takes traffic=N only, not {quoted(next(iter(named)), 40)}=")
    request = DeployRequest.model_validate(fields)
    spec = {"action": "deploy", **request.model_dump(exclude={"callback_url"}), "samples": None}
    job = await _deploy_job(svc, chat, spec)
    return Reply(
        f"Deploying {request.model}{target[len(model) :]} to {endpoint} ({job.id}).",
        ["It is smoke-tested before traffic moves; `endpoints` shows where traffic is."],
    )


async def _deploy_job(svc: Services, chat: ChatRequest, spec: dict[str, Any]) -> Job:
    """A deployment job asked from chat (a platform's retry of the command makes none twice)."""
    job, _ = await create_job(
        svc,
        kind="deploy",
        spec=spec,
        fingerprint=spec,
        idempotency_key=hashlib.sha256(chat.retry_key.encode()).hexdigest()[:32],
        callback_url=None,
        created_by=f"{chat.platform}:{chat.user_id}",
    )
    return job


async def rollback(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    if len(words) != 1:
        raise InvalidInput("usage: rollback <endpoint>")
    await deployments.known(svc, words[0])
    spec = {"action": "rollback", "endpoint": words[0], "samples": None}
    job = await _deploy_job(svc, chat, spec)
    return Reply(f"Rolling {words[0]} back to the version beside the live one ({job.id}).")


def _trigger_text(trigger: dict[str, Any]) -> str:
    if trigger.get("cron"):
        return f"cron `{trigger['cron']}` ({trigger.get('timezone', 'UTC')})"
    return f"every {trigger['every']}" if trigger.get("every") else f"on new data at {trigger.get('on_data')}"


async def schedules_list(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    found = (await schedules.list_schedules(svc))["schedules"]
    lines = []
    for s in found:
        state = "paused" if s["paused"] else f"next {s['next_fire']}" if s["next_fire"] else "waiting for data"
        last = s["fires"][0] if s["fires"] else None
        tail = f"; last: {last['status']} ({last['run'] or 'no run'})" if last else ""
        lines.append(f"`{s['name']}`: {_trigger_text(s['trigger'])}, {state}{tail}")
    return Reply("Schedules:" if lines else "No schedules yet: POST /schedules.", lines)


async def pause(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    return await _pause(svc, words, paused=True)


async def resume(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    return await _pause(svc, words, paused=False)


async def _pause(svc: Services, words: list[str], *, paused: bool) -> Reply:
    if len(words) != 1:
        raise InvalidInput(f"usage: {'pause' if paused else 'resume'} <schedule>")
    body = await schedules.change(svc, words[0], ScheduleChange(paused=paused))
    if paused:
        return Reply(f"Schedule {body['name']} paused.")
    return Reply(f"Schedule {body['name']} resumed: next fire {body['next_fire'] or 'on new data'}.")


async def usage(svc: Services, chat: ChatRequest, words: list[str]) -> Reply:
    return Reply(USAGE)


COMMANDS = {
    "train": train,
    "status": status,
    "runs": runs,
    "logs": logs,
    "cancel": cancel,
    "models": models,
    "best": best,
    "aliases": aliases,
    "promote": promote,
    "approve": approve,
    "reject": reject,
    "endpoints": endpoints,
    "deploy": deploy,
    "rollback": rollback,
    "schedules": schedules_list,
    "pause": pause,
    "resume": resume,
    "help": usage,
}
