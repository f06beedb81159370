"""Data versions on Azure: leases that runs hold on an upload's prefix, and the pruning that respects them.

Each upload lands under a prefix of its own (common.new_data_prefix) and is never written again,
so a run reads one whole version for good. What keeps the datastore from growing for ever is
this module, modelled on the local datastore's leases: a run submitted on a prefix holds a lease
blob `.aml-data-leases/<prefix>/<key>` naming its run, and a prefix is removed only when

- it is not its path's current version,
- the upload that replaced it is older than the retention cutoff (and at least an hour old, so a
  submit that read it as current just before the switch has long since taken its lease), and
- no lease on it belongs to a run that has not ended (a lease whose run id was never written, from
  a submit that died, holds for an hour).

Prefixes some other tool wrote under the same path (names not of our form) are never touched.
"""

from __future__ import annotations

import calendar
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from amllib.backends.azure.common import PREFIX_SEGMENT, AzureBackend
from amllib.errors import NotFound, RunNotFound, quoted

log = logging.getLogger("amllib")
LEASES = ".aml-data-leases"
PREFIX_NAME = re.compile(PREFIX_SEGMENT)


def prefix_time(prefix: str) -> float | None:
    """When the upload to this prefix began (its name says so), None for a folder not of our form."""
    match = PREFIX_NAME.fullmatch(prefix.rstrip("/").rsplit("/", 1)[-1])
    if match is None:
        return None
    return calendar.timegm(time.strptime(match.group(1), "%Y%m%dT%H%M%S")) + int(match.group(2) or 0) / 1e6


class DataLeases(AzureBackend):
    """Leases and pruning over the blob container a backend keeps its data in (each backend says which)."""

    lease_grace = 3600.0  # a lease without a run id counts as held this long (a submit in progress or dead)
    superseded_grace = 3600.0  # a version replaced less than this long ago is never removed

    def _data_container(self) -> Any:
        """The azure.storage.blob ContainerClient of the datastore uploads go to."""
        raise NotImplementedError

    def _data_paths(self) -> list[tuple[str, str | None]]:
        """(datastore path, its current prefix) for every path this tool uploaded to."""
        raise NotImplementedError

    def _forget_prefix(self, path: str, prefix: str) -> None:
        """Called before a prefix's blobs go: whatever names it (v2: a Data asset version) stops naming it."""

    def get_run(self, run_id: str) -> Any:
        raise NotImplementedError

    # -- leases ----------------------------------------------------------------
    def _hold(self, container: Any, prefix: str, key: str, run_id: str | None) -> None:
        """Write (or complete, with the run id once known) the lease `key` on `prefix`."""
        body = json.dumps({"run_id": run_id, "at": time.time()})
        self._call(
            f"holding data {quoted(prefix)}",
            lambda: container.upload_blob(f"{LEASES}/{prefix}/{key}", body, overwrite=True),
        )

    def _held(self, container: Any, prefix: str) -> bool:
        """Whether any lease on prefix belongs to a run that may still read it."""
        for name in self._names(container, f"{LEASES}/{prefix}/"):
            try:
                lease = json.loads(
                    self._call(f"reading {quoted(name)}", lambda n=name: container.download_blob(n).readall())
                )
            except NotFound:
                continue
            except ValueError:
                return True  # not ours to judge
            run_id, at = lease.get("run_id"), float(lease.get("at") or 0)
            if not run_id:
                if time.time() - at < self.lease_grace:
                    return True
                continue
            try:
                if not self.get_run(run_id).status.terminal:
                    return True
            except RunNotFound:
                continue  # its run is gone
        return False

    # -- pruning ---------------------------------------------------------------
    def prune_data(self, *, superseded_before: float) -> int:
        """Remove the data versions replaced before that time that no unfinished run holds; how many went."""
        cutoff = min(superseded_before, time.time() - self.superseded_grace)
        container, removed = self._data_container(), 0
        for path, current in self._data_paths():
            ours = sorted(
                (p for p in self._subfolders(container, path + "/") if prefix_time(p) is not None),
                key=lambda p: (prefix_time(p) or 0.0, p),  # time, then name: two uploads in one microsecond
            )
            for older, newer in itertools.pairwise(ours):  # the newest is current or an upload under way: never
                replaced_at = prefix_time(newer)
                if older == current or replaced_at is None or replaced_at > cutoff or self._held(container, older):
                    continue
                self._forget_prefix(path, older)
                self._delete(container, self._names(container, older + "/"))
                self._delete(container, self._names(container, f"{LEASES}/{older}/"))
                log.info("removed data version %s of %s (replaced, no unfinished run holds it)", older, path)
                removed += 1
        return removed

    def _names(self, container: Any, prefix: str) -> list[str]:
        return self._call(
            f"listing {quoted(prefix)}", lambda: [b.name for b in container.list_blobs(name_starts_with=prefix)]
        )

    def _subfolders(self, container: Any, prefix: str) -> list[str]:
        """The 'folders' right under prefix, without their trailing '/'."""
        return self._call(
            f"listing {quoted(prefix)}",
            lambda: [
                item.name.rstrip("/")
                for item in container.walk_blobs(name_starts_with=prefix, delimiter="/")
                if item.name.endswith("/")
            ],
        )

    def _delete(self, container: Any, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(NotFound):  # gone already: a sweep before this one was killed half-way
                self._call(f"removing {quoted(name)}", container.delete_blob, name)
