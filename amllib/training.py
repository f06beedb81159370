"""Train and register: the seed's run-training steps, written once over the Backend interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amllib.backends.base import Backend, ModelVersion, RunInfo, RunSpec, RunStatus, tag_number
from amllib.errors import MetricsUnavailable
from amllib.jsonsafe import finite_or_text
from amllib.settings import Settings

RUN_VARIABLES = ("model", "experiment", "datapath", "script", "compute_name")
STARTED_BY = "started_by"  # a run's tag naming who or what started it


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended, what it logged, and the model version it became (if any); metrics_error says why its
    metrics could not be read, when they could not (the version is then registered without them)."""

    run: RunInfo
    metrics: dict[str, list[Any]]
    model_version: ModelVersion | None
    metrics_error: str | None = None


def spec_from_settings(
    settings: Settings,
    *,
    estimators: int | None = None,
    args: dict[str, str] | None = None,
    started_by: str | None = None,
) -> RunSpec:
    """A RunSpec from AZML_SCRIPT, AZML_EXPERIMENT, AZML_DATAPATH and AZML_COMPUTE_NAME."""
    settings.require(*RUN_VARIABLES)
    script, experiment, datapath, compute = (
        str(settings.script),
        str(settings.experiment),
        str(settings.datapath),
        str(settings.compute_name),
    )
    return RunSpec(
        script=script,
        experiment=experiment,
        datapath=datapath,
        compute=compute,
        estimators=estimators,
        args=dict(args or {}),
        tags={STARTED_BY: started_by} if started_by else {},
    )


def last_values(metrics: dict[str, list[Any]]) -> dict[str, Any]:
    """Each metric's latest value, as Azure's get_metrics shows a single one."""
    return {name: values[-1] for name, values in metrics.items() if values}


def model_tags(metrics: dict[str, list[Any]]) -> dict[str, Any]:
    """Tags for the registered model: accuracy as a number when the run logged one."""
    logged = last_values(metrics).get("accuracy")
    accuracy = tag_number(logged)
    if accuracy is not None:
        return {"accuracy": accuracy}
    if isinstance(logged, float | int) and not isinstance(logged, bool):
        return {"accuracy": finite_or_text(logged)}  # "NaN" or "Infinity": shown, never a score
    return {}


def finish_run(backend: Backend, run_id: str, *, model_name: str) -> TrainingResult:
    """Read a finished run's metrics and register its outputs/ if it Completed and wrote any."""
    info = backend.get_run(run_id)
    metrics_error = None
    try:
        metrics = backend.get_metrics(run_id)
    except MetricsUnavailable as exc:  # the model is still registered; what is missing is said
        metrics, metrics_error = {}, str(exc)
    version = None
    if info.status == RunStatus.COMPLETED and backend.list_run_outputs(run_id):
        version = backend.register_model(run_id=run_id, model_name=model_name, tags=model_tags(metrics))
    return TrainingResult(run=info, metrics=metrics, model_version=version, metrics_error=metrics_error)


def train_and_register(
    backend: Backend, spec: RunSpec, *, model_name: str, timeout: float | None = None, poll: float = 1.0
) -> TrainingResult:
    """Submit, wait for the end, then register: the whole of run-training.py."""
    backend.ensure_compute(spec.compute)
    run_id = backend.submit_run(spec)
    backend.wait_for_run(run_id, timeout=timeout, poll=poll)
    return finish_run(backend, run_id, model_name=model_name)
