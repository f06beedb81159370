"""Loaded into every local training process (via PYTHONPATH) to capture Azure ML v1 logging.

Outside Azure, `Run.get_context()` returns an `_OfflineRun` whose log/log_row/
log_list/log_image/... calls all go through `_emit` and only print, and whose
`tag`/`set_tags` only print. This hook patches that class when `azureml.core.run`
is first imported, so the same unmodified script records its metrics here
(appended as JSON lines to $AZML_LOCAL_METRICS_FILE) while still logging to
Azure when it runs there. Nothing is imported up front, so a script that never
touches azureml starts as fast as ever.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import time

_TARGET = "azureml.core.run"


def _jsonable(value):
    for attr in ("item", "tolist"):
        if hasattr(value, attr):
            try:
                return getattr(value, attr)()
            except (TypeError, ValueError):
                break
    return str(value)


def _record(kind, name, value):
    path = os.environ.get("AZML_LOCAL_METRICS_FILE")
    if not path:
        return
    line = json.dumps({"kind": kind, "name": str(name), "value": value, "time": time.time()}, default=_jsonable)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _patch(module) -> None:
    offline = getattr(module, "_OfflineRun", None)
    if offline is None:
        return
    original_emit = offline._emit

    def _emit(self, type, name, value):
        _record(type, name, value)
        return original_emit(self, type, name, value)

    def tag(self, name, value=None):
        _record("tag", name, "" if value is None else value)

    def set_tags(self, tags):
        for name, value in (tags or {}).items():
            _record("tag", name, value)

    def add_properties(self, properties):
        for name, value in (properties or {}).items():
            _record("property", name, value)

    offline._emit = _emit
    offline.tag = tag
    offline.set_tags = set_tags
    offline.add_properties = add_properties


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds azureml.core.run through the other finders and patches it once loaded."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                original_exec = spec.loader.exec_module

                def exec_module(module, _exec=original_exec):
                    _exec(module)
                    _patch(module)

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # wraps the loader's own
                return spec
        return None


if os.environ.get("AZML_LOCAL_METRICS_FILE") and not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _PatchOnImport())
