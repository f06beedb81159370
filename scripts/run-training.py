"""Run AZML_SCRIPT on the compute target, wait, and register outputs/ as a new AZML_MODEL version."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib.backends import get_backend
from amllib.backends.base import RunStatus
from amllib.cli import run_main, set_pipeline_variable, settings_requiring
from amllib.training import RUN_VARIABLES, last_values, spec_from_settings, train_and_register

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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--estimators", type=int, help="number of estimators, passed to the training script")
    parser.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra argument passed to the script as --NAME=VALUE (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds")
    args = parser.parse_args()
    if args.estimators is not None and args.estimators < 1:
        parser.error("--estimators must be at least 1")
    settings = settings_requiring(*RUN_VARIABLES)
    backend = get_backend(settings)
    started_by = f"run-training.py ({who()})"
    spec = spec_from_settings(settings, estimators=args.estimators, args=parse_extra(args.arg), started_by=started_by)
    print(f"### Running {spec.script} in experiment {spec.experiment!r} on {spec.compute!r} ({backend.name})")
    result = train_and_register(backend, spec, model_name=settings.model, timeout=args.timeout)
    run = result.run
    print(f"### Run {run.run_id} ended {run.status}")
    for name, value in last_values(result.metrics).items():
        if not isinstance(value, dict | list):
            print(f"    {name} = {value}")
    if run.status != RunStatus.COMPLETED:
        print(f"### Last {LOG_TAIL} lines of the run's log:", file=sys.stderr)
        print(backend.get_log(run.run_id, tail=LOG_TAIL), file=sys.stderr)
        reason = run.error or ("still running when --timeout passed" if not run.status.terminal else "")
        print(f"ERROR! run {run.run_id} {run.status}: {reason}", file=sys.stderr)
        return 1
    if result.model_version is None:
        print("### The run wrote nothing to outputs/, so no model was registered")
        return 0
    model = result.model_version
    print(f"### Registered model {model.name} version {model.version} with tags {model.tags}")
    set_pipeline_variable("AZML_MODEL_VER", model.version, github_name="model_version")
    return 0


if __name__ == "__main__":
    run_main(main)
