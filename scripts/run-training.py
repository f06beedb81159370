"""Run AZML_SCRIPT on the compute target, wait, and register outputs/ as a new AZML_MODEL version.

    python scripts/run-training.py [--estimators N] [--arg NAME=VALUE ...] [--timeout SECONDS]
    python scripts/run-training.py --script train.py --experiment nightly --json
    python scripts/run-training.py --attach RUN_ID     # wait for a run started before, then register it

The run id is printed as soon as the run is submitted (with its dashboard link when AZML_PUBLIC_URL
is set); while it runs, each change of status and the run's log as it is written (not with --quiet).
Ctrl-C stops the waiting, not the run: the script says how to watch it and how to register it later
with --attach. Hands AZML_RUN_ID / run_id, AZML_ACCURACY / accuracy and AZML_MODEL_VER /
model_version to the next pipeline step.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib import cli
from amllib.backends import get_backend
from amllib.backends.base import Backend, RunStatus, tag_number
from amllib.cli import ScriptParser, run_main
from amllib.pipeline_output import Output
from amllib.run_stream import RunStream
from amllib.settings import Settings
from amllib.training import RUN_VARIABLES, TrainingResult, finish_run, last_values, spec_from_settings

LOG_TAIL = 40


def parse_extra(values: list[str]) -> dict[str, str]:
    extra = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"ERROR! --arg expects NAME=VALUE, got {item!r}")
        extra[name] = value
    return extra


def who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown user"


def main() -> int:
    parser = ScriptParser(
        __doc__,
        reads=("script", "experiment", "compute_name", "datapath", "model", "training_dir", "public_url"),
        overrides=("script", "experiment", "compute", "datapath", "model"),
    )
    parser.add_argument("--estimators", type=int, help="number of estimators, passed to the training script")
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra argument passed to the script as --NAME=VALUE (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    parser.add_argument("--attach", metavar="RUN_ID", help="wait for this run (started before) and register it")
    args = parser.parse()
    out = cli.output
    if args.estimators is not None and args.estimators < 1:
        parser.error("--estimators must be at least 1")
    settings = parser.settings(args, *(("model",) if args.attach else RUN_VARIABLES))
    backend = get_backend(settings)
    if args.attach:
        run_id = args.attach
        backend.get_run(run_id)  # RunNotFound, as a one-line error, for an id it does not know
        out.say(f"### Waiting for run {run_id} ({backend.name})")
    else:
        started_by = f"run-training.py ({who()})"
        spec = spec_from_settings(
            settings, estimators=args.estimators, args=parse_extra(args.arg), started_by=started_by
        )
        out.say(f"### Running {spec.script} in experiment {spec.experiment!r} on {spec.compute!r} ({backend.name})")
        backend.ensure_compute(spec.compute)
        run_id = backend.submit_run(spec)
    stream = RunStream(backend, run_id, say=out.progress, logs=not args.quiet)
    try:  # from here on a Ctrl-C leaves a run behind: say so
        if not args.attach:
            link = f" ({settings.public_url.rstrip('/')}/ui/runs/{run_id})" if settings.public_url else ""
            out.say(f"### Submitted run {run_id}{link}")
            out.variable("AZML_RUN_ID", run_id, github_name="run_id")
        stream.wait(timeout=args.timeout)
    except KeyboardInterrupt:
        print(
            f"\n### Stopped waiting. Run {run_id} goes on without this script.\n"
            f"    Watch it:    {watch_hint(settings, run_id)}\n"
            f"    Register it once it has ended: python scripts/run-training.py --attach {run_id}",
            file=sys.stderr,
        )
        return 130
    before = {(v.name, v.version) for v in backend.versions_of_run(run_id)} if args.attach else set()
    result = finish_run(backend, run_id, model_name=settings.model)
    return report(backend, result, out=out, registered_before=before)


def watch_hint(settings: Settings, run_id: str) -> str:
    public = settings.public_url
    if public:
        return f"{public.rstrip('/')}/ui/runs/{run_id}"
    return f"curl $API/runs/{run_id} (GET /runs/{{id}} takes the run id), or the backend's own tools"


def report(
    backend: Backend,
    result: TrainingResult,
    *,
    out: Output,
    registered_before: set[tuple[str, int]],
) -> int:
    run = result.run
    values = {name: v for name, v in last_values(result.metrics).items() if not isinstance(v, dict | list)}
    out.say(f"### Run {run.run_id} ended {run.status}")
    for name, value in values.items():
        out.say(f"    {name} = {value}")
    if result.metrics_error:
        print(f"WARNING: the run's metrics could not be read ({result.metrics_error})", file=sys.stderr)
    accuracy = tag_number(values.get("accuracy"))
    body = {
        "run_id": run.run_id,
        "status": str(run.status),
        "backend": backend.name,
        "experiment": run.experiment,
        "metrics": values,
        "metrics_error": result.metrics_error,
        "accuracy": accuracy,
        "model": None,
    }
    if run.status != RunStatus.COMPLETED:
        print(f"### Last {LOG_TAIL} lines of the run's log:", file=sys.stderr)  # on stderr, streamed or not
        print(backend.get_log(run.run_id, tail=LOG_TAIL), file=sys.stderr)
        reason = run.error or ("still running when --timeout passed" if not run.status.terminal else "")
        out.error(f"run {run.run_id} {run.status}: {reason}", kind="run_failed", extra=body)
        return 1
    out.variable("AZML_ACCURACY", accuracy, github_name="accuracy")
    model = result.model_version
    if model is None:
        out.say("### The run wrote nothing to outputs/, so no model was registered")
        out.result(body)
        return 0
    body["model"] = {"name": model.name, "version": model.version, "tags": model.tags}
    body["registered_before"] = (model.name, model.version) in registered_before
    if body["registered_before"]:  # an --attach of a run registered already
        out.say(f"### Run {run.run_id} was registered already: model {model.name} version {model.version}")
    else:
        out.say(f"### Registered model {model.name} version {model.version} with tags {model.tags}")
    out.variable("AZML_MODEL_VER", model.version, github_name="model_version")
    out.result(body)
    return 0


if __name__ == "__main__":
    run_main(main)
