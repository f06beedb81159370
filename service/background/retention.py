"""The retention sweep: with AZML_RETENTION_DAYS set, what ended longer ago than that is removed.

Removed: ended jobs (with their events), the local run folders of those runs and of runs
no job owns, upload staging left by uploads that died, and, on Azure, data versions (upload
prefixes) replaced before the cutoff that no unfinished run holds (the local datastore drops
those as soon as nothing names them). Kept: everything of an unfinished job, a job that still
owes a callback or chat notice, registered models (the registry holds its own copy of the files) and the data a
datastore path points at now.

Kill-safe by order: the job rows go first, in one transaction that also records their runs
in `swept_runs`; then each run folder is renamed aside in one step and deleted. A kill
between the two leaves a folder no job serves; the next sweep (and every start) finishes it,
and the importer never brings a swept run back.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter

from service.background.periodic import Leader, every
from service.core.jobs import TERMINAL_NAMES
from service.core.store import Job, JobStore, Tx
from service.core.worker import Worker
from service.observe.metrics import ServiceMetrics

log = logging.getLogger("service")
DAY = 86400.0


class RetentionSweep:
    """One per service; `worker` gives the backend and its thread pool, `metrics` counts what went."""

    def __init__(
        self,
        *,
        worker: Worker,
        days: float,
        interval: float,
        metrics: ServiceMetrics | None = None,
        lead: Leader | None = None,
    ) -> None:
        """lead: whether this replica is the one to sweep (periodic.every); None: always."""
        self.worker = worker
        self.lead = lead
        self.store: JobStore = worker.store
        self.days = days
        self.interval = interval
        self.metrics = metrics

    @property
    def cutoff(self) -> float:
        return time.time() - self.days * DAY

    async def run_forever(self) -> None:
        await every(self.interval, self.once, what="retention sweep", lead=self.lead)

    async def once(self) -> Counter[str]:
        """One sweep; how many of each kind of thing it removed."""
        removed: Counter[str] = Counter()
        cutoff, backend, call = self.cutoff, self.worker.backend, self.worker.calls
        removed["run_folder"] += await self._discard(self.store.undiscarded_runs())  # left by a kill
        while batch := self.store.expired(TERMINAL_NAMES, ended_before=cutoff):
            gone = await self.store.write(functools.partial(_remove, batch))
            removed["job"] += len(gone)
            removed["run_folder"] += await self._discard([job.backend_run_id for job in gone if job.backend_run_id])
            if len(gone) < len(batch):
                break  # the rest changed under us; the next sweep sees them
        orphans = [
            run_id
            for run_id in await call(backend.expired_runs, ended_before=cutoff)
            if self.store.by_backend_run(run_id) is None  # a kept job's run stays with its job
        ]
        removed["run_folder"] += await self._discard(orphans, record=True)
        removed["staging"] += await call(backend.discard_stale_staging, keep=self.worker.staging_in_use())
        removed["data_version"] += await call(backend.prune_data, superseded_before=cutoff)
        await self.store.write(lambda tx: tx.forget_swept(before=cutoff))
        self._report(removed)
        return removed

    async def _discard(self, run_ids: list[str], *, record: bool = False) -> int:
        """Remove these runs' files; each is marked done once its folder is gone (or was never local)."""
        count = 0
        for run_id in run_ids:
            if record:  # a run no job owned: recorded first, so the importer cannot bring it back meanwhile
                await self.store.write(functools.partial(_record_swept, run_id))
            count += bool(await self.worker.calls(self.worker.backend.discard_run, run_id))
            await self.store.write(functools.partial(_mark_discarded, run_id))
        return count

    def _report(self, removed: Counter[str]) -> None:
        if self.metrics is not None:
            for what, count in removed.items():
                self.metrics.retention_removed.labels(what).inc(count)
        if any(removed.values()):
            summary = ", ".join(f"{count} {what.replace('_', ' ')}(s)" for what, count in sorted(removed.items()))
            log.info("retention sweep (older than %g days) removed %s", self.days, summary)


def _remove(batch: list[Job], tx: Tx) -> list[Job]:
    return tx.remove_jobs(batch, terminal=TERMINAL_NAMES, now=time.time())


def _mark_discarded(run_id: str, tx: Tx) -> None:
    tx.mark_discarded(run_id)


def _record_swept(run_id: str, tx: Tx) -> None:
    tx.record_swept(run_id, now=time.time())
