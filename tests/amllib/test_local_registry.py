"""The local registry closes every SQLite connection it opens: reads must not cost file descriptors."""

from __future__ import annotations

import os
from pathlib import Path

from amllib.backends.local_registry import LocalRegistry


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_thousand_reads_leave_no_descriptor_open(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    outputs = run_dir / "work" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "model.pkl").write_bytes(b"model")
    registry = LocalRegistry(tmp_path / "home")
    registry.register(run_dir, name="m", tags={"accuracy": 0.9}, run_id="r1", data_version=None, script_digest=None)
    before = open_descriptors()
    for _ in range(250):  # every read path the API and chat-ops use: list, versions, archive/fetch lookup, re-register
        registry.list_models()
        registry.list_versions("m")
        registry.outputs_dir("m", 1)
        registry.register(run_dir, name="m", tags={}, run_id="r1", data_version=None, script_digest=None)
    # sqlite3's `with connect() as db` commits and never closes: each read used to keep 2 descriptors (db and WAL).
    assert open_descriptors() - before <= 2
