"""Point an alias of AZML_MODEL at a version, through a gate, working on the backend directly like the other scripts.

    python scripts/promote-model.py --alias production --model-ver 7 [--gate accuracy:max:0.01] [--reason TEXT]
    python scripts/promote-model.py --alias staging --use-best
    python scripts/promote-model.py --alias production --run-id <the run that made it>

Exit codes a pipeline can branch on: 0 moved, 3 refused by the gate, 4 waiting for approval (an alias in
AZML_PROTECTED_ALIASES moves only through the service: use PUT /models/{name}/aliases/{alias}), 1 error.
Hands the outcome (AZML_PROMOTION / promotion: moved, refused or waiting) and the alias's version
(AZML_MODEL_VER / model_version) to the next pipeline step; --json prints them as one object.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib import cli
from amllib.backends import get_backend
from amllib.cli import ScriptParser, run_main
from amllib.promotion import Change, Gate, GateRefused, apply, candidate_version, check_alias

MOVED, REFUSED, WAITING = 0, 3, 4


def main() -> int:
    parser = ScriptParser(__doc__, reads=("model", "alias_gates", "protected_aliases"), overrides=("model",))
    parser.add_argument("--alias", required=True, help="the alias to move, e.g. production or staging")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--model-ver", type=int, help="this version")
    choice.add_argument("--use-best", action="store_true", help="the version with the highest accuracy tag")
    choice.add_argument("--run-id", help="the version the run made")
    parser.add_argument("--gate", help="metric:max|min:min_delta the version must beat the alias's holder by")
    parser.add_argument("--reason", help="why, for the alias's history")
    args = parser.parse()
    out = cli.output
    check_alias(args.alias)
    settings = parser.settings(args, "model")
    gate = Gate.parse(args.gate) if args.gate else None
    configured = settings.alias_gate_map.get(args.alias)
    if gate is None and configured:
        gate = Gate.parse(configured)  # the alias's own gate (AZML_ALIAS_GATES) applies whoever asks
    if args.alias in settings.protected_alias_set:
        print(
            f"### {args.alias!r} is protected (AZML_PROTECTED_ALIASES): it moves only after someone else "
            f"approves, through the service: PUT /models/{settings.model}/aliases/{args.alias}, "
            "then POST /approvals/<id>/approve",
            file=sys.stderr,
        )
        out.variable("AZML_PROMOTION", "waiting", github_name="promotion")
        out.result({"outcome": "waiting", "model": settings.model, "alias": args.alias})
        return WAITING
    backend = get_backend(settings)
    candidate = candidate_version(
        backend, settings.model, version=args.model_ver, run_id=args.run_id, use_best=args.use_best
    )
    change = Change(args.alias, candidate.version, by=f"promote-model.py ({who()})", reason=args.reason)
    try:
        _, verdict = apply(backend, settings.model, change, gate=gate)
    except GateRefused as refused:
        print(f"### Not moved: {refused}", file=sys.stderr)
        out.variable("AZML_PROMOTION", "refused", github_name="promotion")
        out.result(
            {"outcome": "refused", "model": settings.model, "alias": args.alias, "version": candidate.version}
            | {"reason": str(refused)}
        )
        return REFUSED
    said = f" ({verdict.reason})" if verdict.gate else ""
    out.say(f"### {settings.model}@{args.alias} is version {candidate.version}{said}")
    out.variable("AZML_PROMOTION", "moved", github_name="promotion")
    out.variable("AZML_MODEL_VER", candidate.version, github_name="model_version")
    out.result(
        {"outcome": "moved", "model": settings.model, "alias": args.alias, "version": candidate.version}
        | {"reason": verdict.reason if verdict.gate else None}
    )
    return MOVED


def who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown user"


if __name__ == "__main__":
    run_main(main)
