"""What resolving an alias adds to a fetch on the local backend (issue 28's goal: under 5 ms).

    python -m bench.alias_fetch [--versions 200] [--history 500] [--tries 50]

A local registry with --versions versions of one model and an alias book holding --history changes;
fetch_model by version (the baseline) and by alias, alternately, --tries times each; medians printed
side by side, with resolving alone (resolve_version by alias against by number).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from amllib.backends.local import LocalBackend
from amllib.fetch import fetch_model
from amllib.promotion import Change, apply
from amllib.settings import Settings

MODEL = "bench-model"


def build(home: Path, versions: int, history: int) -> LocalBackend:
    backend = LocalBackend(Settings(_env_file=None, home=home))
    run_dir = home / "a-run"
    (run_dir / "work" / "outputs").mkdir(parents=True)
    (run_dir / "work" / "outputs" / "model.pkl").write_bytes(b"x" * 4096)
    for index in range(versions):
        backend.registry.register(
            run_dir, name=MODEL, tags={"accuracy": 0.5}, run_id=f"run-{index}", data_version=None, script_digest=None
        )
    for index in range(history):  # a long-lived alias: many moves recorded
        apply(backend, MODEL, Change("production", 1 + index % versions, by="bench"))
    return backend


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--tries", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-alias-") as folder:
        home = Path(folder)
        backend = build(home / "aml", args.versions, args.history)
        holder = backend.read_aliases(MODEL).holder("production")
        by_version, by_alias, resolve_version, resolve_alias = [], [], [], []
        for index in range(args.tries):
            for samples, kwargs in ((by_version, {"version": holder}), (by_alias, {"alias": "production"})):
                started = time.perf_counter()
                fetch_model(backend, name=MODEL, output_path=home / "out" / str(index), **kwargs)
                samples.append(time.perf_counter() - started)
            for samples, kwargs in ((resolve_version, {"version": holder}), (resolve_alias, {"alias": "production"})):
                started = time.perf_counter()
                backend.resolve_version(MODEL, **kwargs)
                samples.append(time.perf_counter() - started)
        added = median_ms(by_alias) - median_ms(by_version)
        print(
            f"fetch by alias: {median_ms(by_alias):.2f} ms, by version: {median_ms(by_version):.2f} ms "
            f"(alias adds {added:.2f} ms; goal < 5 ms) — {args.versions} versions, {args.history} alias changes"
        )
        print(
            f"resolve alone: by alias {median_ms(resolve_alias):.2f} ms, by version {median_ms(resolve_version):.2f} ms"
        )


if __name__ == "__main__":
    main()
