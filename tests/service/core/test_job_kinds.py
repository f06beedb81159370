"""service/core/job_kinds.py: one table of job kinds, and a job's JSON shape defined once for rendering and the docs."""

from __future__ import annotations

import time

import pytest

from amllib.backends.base import RunStatus
from service.core.job_kinds import KINDS, DataJob, DeployJob, FetchJob, RunJob, location
from service.core.schemas import render
from service.core.store import Job
from service.http.openapi import ErrorBody

SPECS = {
    "run": {
        "experiment": "e",
        "script": "s.py",
        "model": "m",
        "datapath": "d",
        "compute": "c",
        "estimators": None,
        "args": {},
        "created_by": "ci",
    },
    "data": {"path": "d", "source": "archive", "staging": "/x", "summary": {}, "created_by": "ci"},
    "fetch": {"model": "m", "version": None, "use_best": False, "output_path": "m", "created_by": "ci"},
    "deploy": {"action": "deploy", "endpoint": "titanic", "model": "m", "version": 1, "created_by": "ci"},
}
SHAPES = {"run": RunJob, "data": DataJob, "fetch": FetchJob, "deploy": DeployJob}


def job(kind: str, **spec: object) -> Job:
    return Job(id=f"{kind}_1", kind=kind, status=RunStatus.QUEUED, spec={**SPECS[kind], **spec}, created_at=time.time())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_rendered_job_has_exactly_the_documented_fields(kind: str) -> None:
    body = render(job(kind), "local")
    assert set(body) == set(SHAPES[kind].__annotations__) | set(SHAPES[kind].__required_keys__)
    assert location(job(kind)).endswith(f"/{kind}_1") and location(job(kind)).startswith(KINDS[kind].path)


def test_the_docs_describe_the_same_fields(make_app) -> None:
    schemas = make_app().get("/openapi.json").json()["components"]["schemas"]
    for kind, shape in SHAPES.items():
        assert set(schemas[shape.__name__]["properties"]) == set(render(job(kind), "local")), kind
    assert "ErrorBody" in schemas and set(schemas["ErrorBody"]["properties"]) == set(ErrorBody.model_fields)


def test_one_word_for_who_started_a_run_even_for_jobs_stored_before_it_was_one() -> None:
    old = job("run", created_by=None, started_by="slack:U1")  # a row written when runs kept started_by
    assert render(old, "local")["created_by"] == "slack:U1"
    assert "started_by" not in render(job("run"), "local")
