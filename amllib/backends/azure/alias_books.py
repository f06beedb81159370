"""A model's aliases on Azure: one JSON blob per model in the workspace's default datastore, written compare-and-set.

`.aml-model-aliases/<model>.json` holds the book amllib/promotion.py keeps (aliases, history,
archived versions). A write names the ETag of the blob it read (If-Match), or asks that no blob
exist yet (If-None-Match *, what upload_blob(overwrite=False) sends): a writer that lost the race
gets 412/409 and reads again. So a move is one step on Azure too, for the scripts, the service
and every replica, and a reader sees the old book or the new one, never two holders or none.
(Tags on the versions would take two writes a move: the issue's other design, not taken.)
"""

from __future__ import annotations

import json
from typing import Any

from amllib.backends.azure.common import AzureBackend
from amllib.backends.base import AliasBook
from amllib.paths import safe_relpath

BOOKS = ".aml-model-aliases"


class BlobAliasBooks(AzureBackend):
    """read_aliases / write_aliases over the datastore a backend keeps its data in."""

    def _data_container(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def _book_blob(name: str) -> str:
        return f"{BOOKS}/{safe_relpath(name, what='model name')}.json"

    def read_aliases(self, name: str) -> AliasBook:
        from azure.core.exceptions import ResourceNotFoundError

        container = self._data_container()

        def read() -> tuple[bytes, str] | None:
            try:
                stream = container.download_blob(self._book_blob(name))
            except ResourceNotFoundError:
                return None
            return stream.readall(), stream.properties.etag

        found = self._call(f"reading the aliases of {name}", read)
        if found is None:
            return AliasBook()
        doc = json.loads(found[0])
        return AliasBook(
            aliases=doc.get("aliases", {}),
            history=doc.get("history", []),
            archived=doc.get("archived", []),
            token=found[1],
        )

    def write_aliases(self, name: str, book: AliasBook, *, expected: str | None) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        container = self._data_container()
        body = json.dumps(book.document()).encode()
        conditions: dict[str, Any] = (
            {"overwrite": False}
            if expected is None
            else {"overwrite": True, "etag": expected, "match_condition": MatchConditions.IfNotModified}
        )

        def write() -> bool:
            try:
                container.upload_blob(self._book_blob(name), body, **conditions)
            except (ResourceExistsError, ResourceModifiedError):
                return False  # another writer came first: the caller reads again
            return True

        return self._call(f"writing the aliases of {name}", write)
