"""Requests the azureml-v2 backend sends Azure, through the real MLClient on replayed REST (tests/azure/replay.py).

    python -m bench.azure_requests [--history 10000] [--reads 60]

Each figure beside its baseline from the same run, the baseline being what the code did before issue 27:
- one get_run on a job that answers 429 for ever: azure-core's own retries (retry_total=10) inside each of
  5 tries of ours, against one layer (ours, ATTEMPTS tries within the call's budget);
- one run-importer pass over a history of --history jobs with 3 new ones: every page of the job list,
  against the newest pages only (the whole list once an hour);
- --reads log reads of one run (a run page tailing it): a datastore GET + listSecrets POST each, against
  the container client kept.
Waits (Retry-After, pollers) are recorded, not slept: the figures are requests, not seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from azure.core.pipeline.transport import RequestsTransport

from amllib.backends.azure import retry, v2_storage
from amllib.errors import BackendUnavailable
from tests.azure.replay import ARM, StaticCredential, Workspace, _Session, replay_settings, replayed_backend

JOB = "azml-bench"


def count(workspace: Workspace, suffix: str, method: str = "GET") -> int:
    return sum(1 for m, path in workspace.requests if m == method and path.endswith(suffix))


def throttled_forever(tmp: Path) -> tuple[int, int]:
    """(requests before, requests now) for one get_run of a job that always answers 429."""
    from azure.ai.ml import MLClient

    from amllib.backends.azure.v2 import AzureMLV2Backend

    found = []
    for before in (True, False):
        workspace = Workspace()
        workspace.add_job(JOB, status="Running")
        workspace.fault("GET", rf"{ARM}/jobs/{JOB}", 429, {"Retry-After": "1"}, times=None)
        settings = replay_settings(tmp / ("before" if before else "now"))
        if before:  # the SDK's own retries on, and 5 tries of ours
            client = MLClient(
                StaticCredential(),
                subscription_id=settings.subid,
                resource_group_name=settings.resgrp,
                workspace_name=settings.workspace,
                transport=RequestsTransport(session=_Session(workspace)),
            )
            backend: Any = AzureMLV2Backend(settings, client=client, retry_delay=0.0, retry_sleep=lambda s: None)
            backend.retry_attempts = 5
        else:
            backend = replayed_backend(settings, workspace, retry_sleep=lambda s: None)
        with contextlib.suppress(BackendUnavailable):  # what it ends in: the requests are the figure
            backend.get_run(JOB)
        found.append(count(workspace, f"/jobs/{JOB}"))
    return found[0], found[1]


def importer_pass(tmp: Path, history: int) -> tuple[int, int, float]:
    """(pages of a whole listing, pages of a pass now, seconds the pass took now)."""
    workspace = Workspace()
    workspace.add_history(history, start=time.time() - 400 * 86400, step=60.0)
    backend = replayed_backend(replay_settings(tmp / "importer"), workspace)
    first = backend.list_runs(created_after=0.0, limit=history + 10)  # the first pass after a start reads it all
    whole = count(workspace, "/jobs")
    mark = max(info.created_at for info in first)
    for index in range(3):
        workspace.add_job(f"azml-new-{index}", status="Running", created=time.time() + index)
    started = time.perf_counter()
    backend.list_runs(created_after=mark)
    took = time.perf_counter() - started
    return whole, count(workspace, "/jobs") - whole, took


class _Logs:
    def __call__(self, account_url: str, container_name: str, credential: Any = None, **options: Any) -> Any:
        return self

    def list_blobs(self, name_starts_with: str | None = None, **kwargs: Any) -> list:
        return [type("Blob", (), {"name": f"{name_starts_with}std_log.txt", "size": 5})()]

    def get_blob_client(self, name: str) -> Any:
        return self

    def download_blob(self, **kwargs: Any) -> Any:
        return self

    def readall(self) -> bytes:
        return b"line\n"


def log_reads(tmp: Path, reads: int) -> tuple[int, int]:
    """(listSecrets before, listSecrets now) over `reads` log reads of one run."""
    found = []
    for seconds in (0.0, v2_storage.CONTAINER_SECONDS):  # 0: a new container client every read, as before
        workspace = Workspace()
        workspace.add_job(JOB, status="Running")
        v2_storage.CONTAINER_SECONDS = seconds
        backend = replayed_backend(replay_settings(tmp / f"logs-{seconds}"), workspace, container_client=_Logs())
        for _ in range(reads):
            backend.get_log(JOB, tail=5)
        found.append(count(workspace, "/listSecrets", method="POST"))
    return found[0], found[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=60)
    args = parser.parse_args()
    RequestsTransport.sleep = lambda self, seconds: None  # type: ignore[method-assign]  (waits recorded, not slept)
    with tempfile.TemporaryDirectory(prefix="bench-azure-") as folder:
        tmp = Path(folder)
        before, now = throttled_forever(tmp)
        print(f"get_run on a job throttled for ever: {now} requests (before: {before}; ATTEMPTS={retry.ATTEMPTS})")
        whole, now_pages, took = importer_pass(tmp, args.history)
        print(
            f"run importer pass over {args.history:,} jobs + 3 new: {now_pages} page request(s) in {took:.2f} s "
            f"(before: {whole}, every page of the history, every pass)"
        )
        secrets_before, secrets_now = log_reads(tmp, args.reads)
        print(
            f"{args.reads} log reads of one run: {secrets_now} listSecrets POST(s) "
            f"(before: {secrets_before}, one per read, each an ARM write-quota call)"
        )


if __name__ == "__main__":
    main()
