"""Fetch a version of AZML_MODEL (latest, --model-ver N, --use-best or --alias NAME) with metadata.json.

    python scripts/fetch-model.py --use-best --output-path model-api/pickles
    python scripts/fetch-model.py --alias production --model titanic-model --json

Hands the version fetched to the next pipeline step as AZML_MODEL_VER / model_version (and the alias as
AZML_MODEL_ALIAS / alias when one was asked for).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib import cli
from amllib.backends import get_backend
from amllib.cli import ScriptParser, run_main
from amllib.fetch import fetch_model


def main() -> int:
    parser = ScriptParser(__doc__, reads=("model",), overrides=("model",))
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--model-ver", type=int, help="fetch this version (default: the newest)")
    choice.add_argument("--use-best", action="store_true", help="fetch the version with the highest accuracy tag")
    choice.add_argument("--alias", help="fetch the version this alias names (e.g. production)")
    parser.add_argument("--output-path", default="model-api/pickles", help="where the files go")
    args = parser.parse()
    out = cli.output
    if args.model_ver is not None and args.model_ver < 1:
        parser.error("--model-ver must be at least 1")
    settings = parser.settings(args, "model")
    backend = get_backend(settings)
    result = fetch_model(
        backend,
        name=settings.model,
        output_path=Path(args.output_path),
        version=args.model_ver,
        use_best=args.use_best,
        alias=args.alias,
    )
    if result.fell_back_to_latest:
        print(
            f"WARNING: no version of {settings.model!r} is tagged with a numeric accuracy; fetched the latest instead",
            file=sys.stderr,
        )
    model = result.model
    where = Path(args.output_path).resolve()
    by = f" (alias {args.alias})" if args.alias else ""
    out.say(f"### Fetched model {model.name} version {model.version}{by} into {where}")
    out.say(f"    files: {', '.join(result.files)} + metadata.json")
    if "accuracy" in model.tags:
        out.say(f"    accuracy: {model.tags['accuracy']}")
    out.variable("AZML_MODEL_VER", model.version, github_name="model_version")
    out.variable("AZML_MODEL_ALIAS", args.alias, github_name="alias")
    out.result(
        {
            "model": model.name,
            "version": model.version,
            "alias": args.alias,
            "accuracy": model.tags.get("accuracy"),
            "tags": model.tags,
            "output_path": str(where),
            "files": [*result.files, "metadata.json"],
            "fell_back_to_latest": result.fell_back_to_latest,
        }
    )
    return 0


if __name__ == "__main__":
    run_main(main)
