"""Fetch a version of AZML_MODEL (latest, --model-ver N, --use-best or --alias NAME) with metadata.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from amllib.backends import get_backend
from amllib.cli import run_main, set_pipeline_variable, settings_requiring
from amllib.fetch import fetch_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--model-ver", type=int, help="fetch this version (default: the newest)")
    choice.add_argument("--use-best", action="store_true", help="fetch the version with the highest accuracy tag")
    choice.add_argument("--alias", help="fetch the version this alias names (e.g. production)")
    parser.add_argument("--output-path", default="model-api/pickles", help="where the files go")
    args = parser.parse_args()
    if args.model_ver is not None and args.model_ver < 1:
        parser.error("--model-ver must be at least 1")
    settings = settings_requiring("model")
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
    by = f" (alias {args.alias})" if args.alias else ""
    print(f"### Fetched model {model.name} version {model.version}{by} into {Path(args.output_path).resolve()}")
    print(f"    files: {', '.join(result.files)} + metadata.json")
    if "accuracy" in model.tags:
        print(f"    accuracy: {model.tags['accuracy']}")
    set_pipeline_variable("AZML_MODEL_VER", model.version, github_name="model_version")
    return 0


if __name__ == "__main__":
    run_main(main)
