"""Which version of a model is in production: aliases, their gates and their history, decided here for every caller.

An alias (`production`, `staging`, any `[a-z][a-z0-9-]{0,31}`) names at most one version of a model
at a time. The backend keeps each model's aliases, their history and its archived versions in one
document (Backend.read_aliases / write_aliases, a compare-and-set), so a move is one step for every
reader, the scripts and each replica of the service alike, and two moves at once both land, in
order, one after the other.

A gate compares a candidate with the alias's holder on one metric: `accuracy:max:0.01` lets the
candidate through only if it beats the holder by at least 0.01 (an unset alias passes; a missing
or non-finite value never passes). Approvals (four eyes) are the service's: it asks before it
calls move_alias (service/actions/promotions).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from amllib.backends.base import AliasBook, Backend, ModelVersion, tag_number
from amllib.errors import AmlError, BackendUnavailable, Conflict, InvalidInput, ModelNotFound, quoted

log = logging.getLogger("amllib")
ALIAS = re.compile(r"[a-z][a-z0-9-]{0,31}")
WRITE_TRIES = 20  # another writer changed the book between our read and our write: read again
HISTORY_KEPT = 1000  # the newest changes kept in a model's book


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
        raise InvalidInput(
            f"alias {quoted(alias)} must be a lower-case letter then up to 31 lower-case letters, digits or '-'"
        )
    return alias


@dataclass(frozen=True)
class Gate:
    """The candidate must beat the alias's holder on `metric` by at least `min_delta` (direction max: higher)."""

    metric: str
    direction: str = "max"
    min_delta: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Gate:
        """`metric:max:0.01`, `metric:min`, or `metric` (max, 0)."""
        parts = text.split(":")
        if not parts[0] or len(parts) > 3:
            raise InvalidInput(f"gate {quoted(text)} is not metric[:max|min[:min_delta]]")
        direction = parts[1] if len(parts) > 1 and parts[1] else "max"
        try:
            delta = float(parts[2]) if len(parts) > 2 else 0.0
        except ValueError as exc:
            raise InvalidInput(f"gate {quoted(text)}: min_delta must be a number") from exc
        return cls.of({"metric": parts[0], "direction": direction, "min_delta": delta})

    @classmethod
    def of(cls, value: dict[str, Any]) -> Gate:
        metric, direction = value.get("metric"), value.get("direction", "max")
        delta = value.get("min_delta", 0.0)
        if not isinstance(metric, str) or not metric or len(metric) > 255:
            raise InvalidInput("gate.metric must name a metric")
        if direction not in ("max", "min"):
            raise InvalidInput(f"gate.direction must be max or min, not {quoted(direction)}")
        if isinstance(delta, bool) or not isinstance(delta, int | float) or not math.isfinite(delta):
            raise InvalidInput("gate.min_delta must be a finite number")
        return cls(metric=metric, direction=direction, min_delta=float(delta))

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "min_delta": self.min_delta}


@dataclass(frozen=True)
class Verdict:
    """What a gate said: passed or not, the two figures, and why in words."""

    passed: bool
    gate: dict[str, Any] | None
    candidate: float | None = None
    holder: float | None = None
    holder_version: int | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "gate": self.gate,
            "candidate": self.candidate,
            "holder": self.holder,
            "holder_version": self.holder_version,
            "reason": self.reason,
        }


def score(backend: Backend, version: ModelVersion, metric: str) -> float | None:
    """The version's figure for metric: its tag, else the last value its run logged (finite numbers only)."""
    found = tag_number(version.tags.get(metric))
    if found is not None or not version.run_id:
        return found
    try:
        history = backend.get_metrics(version.run_id)
    except AmlError:  # the run is gone, or its metrics can't be read: no figure
        return None
    values = history.get(metric) or []
    return tag_number(values[-1]) if values else None


def judge(backend: Backend, name: str, candidate: ModelVersion, gate: Gate | None, holder: int | None) -> Verdict:
    """Whether candidate may take the alias held by version `holder` (None: unset), by the gate."""
    if gate is None:
        return Verdict(True, None, holder_version=holder, reason="no gate")
    theirs = None
    if holder is not None:
        held = backend.resolve_version(name, version=holder)
        theirs = score(backend, held, gate.metric)
    mine = score(backend, candidate, gate.metric)
    if mine is None:
        reason = f"version {candidate.version} has no finite {gate.metric}"
        return Verdict(False, gate.as_dict(), None, theirs, holder, reason)
    if holder is None or holder == candidate.version:
        return Verdict(True, gate.as_dict(), mine, theirs, holder, "the alias is unset" if holder is None else "")
    if theirs is None:
        reason = f"the holder, version {holder}, has no finite {gate.metric}: the candidate passes"
        return Verdict(True, gate.as_dict(), mine, None, holder, reason)
    gain = mine - theirs if gate.direction == "max" else theirs - mine
    passed = gain >= gate.min_delta
    word = "beats" if passed else "does not beat"
    reason = (
        f"version {candidate.version} ({gate.metric} {mine:g}) {word} version {holder} ({theirs:g}) "
        f"by at least {gate.min_delta:g} ({gate.direction})"
    )
    return Verdict(passed, gate.as_dict(), mine, theirs, holder, reason)


@dataclass(frozen=True)
class Change:
    """One alias change as recorded in the model's history."""

    alias: str
    version: int | None  # None: the alias was removed
    by: str
    reason: str | None = None
    verdict: Verdict | None = None
    approved_by: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key: str | None = (
        None  # names the move (an approval's id): applying it again once it is in the history does nothing
    )


def _live(backend: Backend, name: str, version: int, book: AliasBook) -> ModelVersion:
    found = backend.resolve_version(name, version=version)
    if version in book.archived:
        raise Conflict(f"version {version} of {quoted(name)} is archived: restore it before giving it an alias")
    return found


def apply(backend: Backend, name: str, change: Change, *, gate: Gate | None = None) -> tuple[AliasBook, Verdict]:
    """Move (or remove) the alias in one compare-and-set step; the gate is judged against the holder read in that
    same step. Raises Conflict (with the verdict's words) when the gate refuses, ModelNotFound for an unknown
    model or version."""
    check_alias(change.alias)
    for _ in range(WRITE_TRIES):
        book = backend.read_aliases(name)
        holder = book.holder(change.alias)
        if change.key and any(entry.get("key") == change.key for entry in book.history):
            return book, Verdict(True, None, holder_version=holder, reason="made already")  # a retry of a move made
        if change.version is None:
            if holder is None:
                raise ModelNotFound(f"model {quoted(name)} has no alias {quoted(change.alias)}")
            verdict = Verdict(True, None, holder_version=holder, reason="removed")
        else:
            candidate = _live(backend, name, change.version, book)
            verdict = change.verdict or judge(backend, name, candidate, gate, holder)
            if not verdict.passed:
                raise GateRefused(verdict)
        new = _recorded(book, name, change, holder, verdict)
        if backend.write_aliases(name, new, expected=book.token):
            _mirror(backend, name, new, {v for v in (holder, change.version) if v is not None})
            return new, verdict
    raise BackendUnavailable(f"aliases of {quoted(name)} kept changing under this move ({WRITE_TRIES} tries)")


def _recorded(book: AliasBook, name: str, change: Change, holder: int | None, verdict: Verdict) -> AliasBook:
    now = time.time()
    aliases = dict(book.aliases)
    if change.version is None:
        aliases.pop(change.alias, None)
    else:
        aliases[change.alias] = {"version": change.version, "since": now, "by": change.by, "reason": change.reason}
    entry = {
        "alias": change.alias,
        "from": holder,
        "to": change.version,
        "at": now,
        "by": change.by,
        "reason": change.reason,
        "gate": verdict.as_dict() if verdict.gate else None,
        "approved_by": change.approved_by,
        **({"key": change.key} if change.key else {}),
        **change.extra,
    }
    return replace(book, aliases=aliases, history=[*book.history, entry][-HISTORY_KEPT:])


def _mirror(backend: Backend, name: str, book: AliasBook, versions: set[int]) -> None:
    """The registry's own marks follow the book; the move stands if they cannot (said in the log)."""
    try:
        backend.mirror_aliases(name, book, versions)
    except AmlError as exc:
        log.warning(
            "%s: the aliases moved, but the registry's own marks of %s were not updated: %s", name, versions, exc
        )


class GateRefused(Conflict):
    """The gate kept the candidate out: the verdict names both figures."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(f"the gate refused: {verdict.reason}")
        self.verdict = verdict


def set_archived(backend: Backend, name: str, version: int, archived: bool) -> AliasBook:
    """Archive (never chosen by latest, best or a new alias) or restore a version; an alias it holds stays."""
    backend.resolve_version(name, version=version)  # ModelNotFound
    for _ in range(WRITE_TRIES):
        book = backend.read_aliases(name)
        now = set(book.archived)
        (now.add if archived else now.discard)(version)
        if now == set(book.archived):
            _mirror(backend, name, book, {version})  # a mirror that failed before is made good
            return book
        new = replace(book, archived=sorted(now))
        if backend.write_aliases(name, new, expected=book.token):
            _mirror(backend, name, new, {version})
            return new
    raise BackendUnavailable(f"aliases of {quoted(name)} kept changing under this change ({WRITE_TRIES} tries)")


def candidate_version(
    backend: Backend, name: str, *, version: int | None = None, run_id: str | None = None, use_best: bool = False
) -> ModelVersion:
    """The version a promotion names: by number, by the run that made it, or the best by accuracy."""
    given = [x for x in (version is not None, run_id is not None, use_best) if x]
    if len(given) != 1:
        raise InvalidInput("name exactly one of version, run_id or use_best")
    if run_id is not None:
        made = [v for v in backend.list_model_versions(name) if v.run_id == run_id]
        if not made:
            raise ModelNotFound(f"no version of model {quoted(name)} was made from run {quoted(run_id)}")
        return made[0]
    return backend.resolve_version(name, version=version, best_by="accuracy" if use_best else None)
