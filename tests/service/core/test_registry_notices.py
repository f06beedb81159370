"""Which event rows become notices, with keys that name the happening (a run's later events never repeat one)."""

from __future__ import annotations

from service.core.registry_notices import notices
from tests.conftest import make_settings

RUN = {
    "id": "run_1",
    "status": "Completed",
    "script": "train.py",
    "experiment": "titanic",
    "model": "titanic-model",
    "created_by": "alice",
    "metrics": {"accuracy": 0.8123, "loss": "NaN"},
    "model_version": {"name": "titanic-model", "version": 4},
}


def test_a_run_is_told_when_it_fails_and_when_its_model_is_registered(tmp_path) -> None:
    settings = make_settings(tmp_path, public_url="https://aml.example.com/")
    (registered,) = notices(settings, 7, "run", RUN)
    assert registered.event == "model.registered" and registered.key == "model.registered:titanic-model:4"
    assert registered.headline == "Model titanic-model version 4 registered"
    assert "Metrics: accuracy 0.8123" in registered.lines  # a NaN stored as text is not a figure
    assert registered.link == "https://aml.example.com/ui/models/titanic-model"
    assert notices(settings, 9, "run", {**RUN, "status": "Running"})[0].key == registered.key  # the same happening

    failed = {**RUN, "status": "Failed", "error": "exited with code 3\nline 2\nline 3\nline 4", "model_version": None}
    (told,) = notices(settings, 8, "run", failed)
    assert told.event == "run.failed" and told.key == "run.failed:run_1" and told.model == "titanic-model"
    assert told.lines[-1] == "Error: exited with code 3\nline 2\nline 3"
    assert notices(settings, 8, "run", {**failed, "status": "Canceled"}) == []
    assert notices(settings, 8, "data", {"id": "data_1", "status": "Failed"}) == []


def test_alias_and_approval_events_read_with_both_figures(tmp_path) -> None:
    settings = make_settings(tmp_path)
    gate = {"passed": True, "gate": {"metric": "accuracy", "direction": "max", "min_delta": 0.01}, "candidate": 0.84}
    moved = {
        "event": "alias.changed",
        "model": "m",
        "alias": "production",
        "version": 3,
        "holder_before": 2,
        "by": "alice",
        "approved_by": "bob",
        "gate": {**gate, "holder": 0.8, "holder_version": 2},
    }
    (told,) = notices(settings, 41, "alias", moved)
    assert told.key == "alias.changed:41" and told.headline == "m: production now version 3 (was version 2)"
    assert told.lines == [
        "By alice, approved by bob",
        "Gate accuracy max by 0.01: candidate 0.84 against version 2's 0.8",
    ]
    assert told.link is None  # no AZML_PUBLIC_URL: no link people could not follow
    removed = notices(settings, 42, "alias", {**moved, "version": None, "holder_before": None, "approved_by": None})
    assert removed[0].headline == "m: production removed"
    assert notices(settings, 43, "alias", {"event": "version.archived", "model": "m", "version": 1}) == []

    asked = {"event": "approval.requested", "id": "appr_1", "model": "m", "alias": "production", "version": 3}
    (request,) = notices(settings, 44, "approval", {**asked, "requested_by": "alice", "verdict": gate})
    assert request.key == "approval.requested:appr_1" and "approve appr_1" in request.lines[-1]
    decided = {**asked, "event": "approval.decided", "status": "rejected", "decided_by": "bob", "note": "not yet"}
    (decision,) = notices(settings, 45, "approval", decided)
    assert (
        decision.key == "approval.decided:appr_1"
        and decision.headline == "Approval rejected: m, production to version 3"
    )
    assert decision.lines[-1] == "Note: not yet"


def test_a_deployment_is_told_when_traffic_moved_and_when_it_could_not(tmp_path) -> None:
    settings = make_settings(tmp_path)
    job = {
        "id": "deploy_1",
        "action": "deploy",
        "endpoint": "titanic",
        "model": "titanic-model",
        "version": 7,
        "created_by": "follow:production",
        "trigger": "alias production of titanic-model moved to version 7",
        "traffic": {"green": 100, "blue": 0},
    }
    (moved,) = notices(settings, 50, "deploy", {**job, "status": "Completed"})
    assert moved.key == "deployment.changed:deploy_1" and moved.model == "titanic-model"
    assert moved.headline == "titanic now serves titanic-model version 7 (green 100%, blue 0%)"
    (failed,) = notices(
        settings, 51, "deploy", {**job, "status": "Failed", "error": "smoke test request 1 answered 400"}
    )
    assert failed.event == "deployment.failed" and failed.headline.endswith("traffic stayed where it was")
    assert notices(settings, 52, "deploy", {**job, "status": "Running"}) == []


def test_a_schedule_is_told_when_it_fires_and_when_it_fails(tmp_path) -> None:
    settings = make_settings(tmp_path, public_url="https://aml.example.com")
    fired = {"event": "schedule.fired", "schedule": "nightly", "tick": "2026-12-07T03:00:00+00:00", "run": "run_1"}
    (told,) = notices(settings, 60, "schedule", fired)
    assert (
        told.key == "schedule.fired:nightly:60"
        and told.headline == "Schedule nightly fired (2026-12-07T03:00:00+00:00)"
    )
    assert told.link == "https://aml.example.com/ui/runs/run_1"
    failed = {"event": "schedule.failed", "schedule": "nightly", "run": "run_1", "why": "run run_1 ended Failed: boom"}
    (failure,) = notices(settings, 61, "schedule", failed)
    assert failure.event == "schedule.failed" and failure.lines == ["Run run_1", "Why: run run_1 ended Failed: boom"]
