"""The seed's model contract, served: model.pkl + lookup.pkl + flags.pkl → probabilities by flag.

What `fetch-model.py` writes "for a model API image to pick up" (the Batcomputer model API): the
model is a scikit-learn classifier, `lookup` an ordered mapping of feature → categories (a dict of
category → code) or 0 (a number), `flags` the names of the classes. A request is a JSON object of
feature values; each lookup key is read in lookup's order, a category mapped to its code, a number
used as it is, and the answer is `{flag: probability}` for the first row of predict_proba.

As the Batcomputer API: a missing feature or an unknown category is `400 {"error": "Value: '<key>'
not found in model lookup"}`. Unlike it (which answers 500 with the exception's text), a wrong type
(text for a number, a number for a category, a boolean, NaN) is a 400 naming the feature: a caller's
mistake is never a server error here.

One module serves the local endpoint process (amllib/endpoints/server.py) and Azure ML online
deployments, whose scoring script calls init() once and run(raw) per request (the model's files
under $AZUREML_MODEL_DIR).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILES = ("model.pkl", "lookup.pkl", "flags.pkl")
MAX_BATCH = 1000


class ScoringError(Exception):
    """A request the model cannot answer: `status` and the body's `error` text."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ModelContractError(Exception):
    """The folder does not hold the seed's model contract (a message naming what is wrong)."""


class Predictor:
    """One model version loaded from its folder, answering predict/params/info."""

    def __init__(self, folder: Path, *, info: Mapping[str, Any] | None = None) -> None:
        self.folder = folder
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise ModelContractError(
                f"the model's files lack {', '.join(missing)}: a served model needs model.pkl, lookup.pkl and flags.pkl"
            )
        self.model = _load(folder / "model.pkl")
        self.lookup = _load(folder / "lookup.pkl")
        self.flags = _load(folder / "flags.pkl")
        if not hasattr(self.model, "predict_proba"):
            raise ModelContractError("model.pkl is not a classifier with predict_proba")
        one_core(self.model)
        if not isinstance(self.lookup, Mapping) or not self.lookup:
            raise ModelContractError("lookup.pkl is not a mapping of feature to categories (or 0 for a number)")
        if not isinstance(self.flags, list | tuple) or not all(isinstance(flag, str) for flag in self.flags):
            raise ModelContractError("flags.pkl is not a list of class names")
        self.features = [str(key) for key in self.lookup]
        metadata = folder / "metadata.json"
        self.metadata = _json_file(metadata) if metadata.is_file() else {}
        self.extra = dict(info or {})

    def row(self, body: Any) -> list[float]:
        """The feature row of one request body, in lookup's order."""
        if not isinstance(body, Mapping):
            raise ScoringError("the body must be a JSON object of feature values")
        row = []
        for key, kind in self.lookup.items():
            if key not in body:
                raise ScoringError(f"Value: '{key}' not found in model lookup")
            value = body[key]
            if isinstance(kind, Mapping):
                if not isinstance(value, str):
                    raise ScoringError(f"Value: '{key}' is one of {', '.join(map(str, kind))}, not {_shown(value)}")
                if value not in kind:
                    raise ScoringError(f"Value: '{key}' not found in model lookup")
                row.append(kind[value])
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ScoringError(f"Value: '{key}' must be a finite number, not {_shown(value)}")
                row.append(value)
        return row

    def predict(self, body: Any) -> dict[str, float]:
        """{flag: probability} for one request, as the Batcomputer API answers POST /api/predict."""
        return self.predict_rows([self.row(body)])[0]

    def predict_rows(self, rows: list[list[float]]) -> list[dict[str, float]]:
        try:
            probabilities = self.model.predict_proba(rows)
        except Exception as exc:  # the model refused the row: what the model says, as a 400
            raise ScoringError(f"the model could not score this input: {type(exc).__name__}: {exc}"[:500]) from exc
        return [{flag: float(p) for flag, p in zip(self.flags, found, strict=False)} for found in probabilities]

    def score(self, body: Any) -> dict[str, Any]:
        """Azure ML's batch shape: {"data": [{...}, ...]} → {"predictions": [{flag: p}, ...]}."""
        data = body.get("data") if isinstance(body, Mapping) else None
        if not isinstance(data, list) or not data:
            raise ScoringError('the body must be {"data": [ {feature values}, ... ]}')
        if len(data) > MAX_BATCH:
            raise ScoringError(f"at most {MAX_BATCH} rows at once, not {len(data)}")
        rows = []
        for index, item in enumerate(data):
            try:
                rows.append(self.row(item))
            except ScoringError as exc:
                raise ScoringError(f"row {index}: {exc.message}") from None
        return {"predictions": self.predict_rows(rows)}

    def params(self) -> dict[str, Any]:
        """For each feature: its categories, or 0 for a number (GET /api/predict/params)."""
        return {key: list(kind) if isinstance(kind, Mapping) else 0 for key, kind in self.lookup.items()}

    def info(self) -> dict[str, Any]:
        """GET /api/info: alive, the version's metadata.json, and what is served (model, version, alias)."""
        return {"status": "alive", "metadata": self.metadata, **self.extra}


def one_core(model: Any) -> None:
    """Predict each request on one core: a model trained with n_jobs=-1 (the shipped scripts' default) would
    start a pool of threads for every row, 5x slower than one core here (bench/endpoint_predict.py);
    requests run side by side instead. Estimators inside a pipeline or ensemble are set too."""
    seen: set[int] = set()

    def visit(found: Any) -> None:
        if id(found) in seen or not hasattr(found, "get_params"):
            return
        seen.add(id(found))
        if getattr(found, "n_jobs", None) not in (None, 1):
            found.n_jobs = 1
        for value in vars(found).values():
            for item in value if isinstance(value, list | tuple) else [value]:
                visit(item[-1] if isinstance(item, tuple) and item else item)

    visit(model)


def _load(path: Path) -> Any:
    """A pickle the registry holds: written by the operator's own training script, so trusted as code is."""
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except Exception as exc:
        raise ModelContractError(f"{path.name} could not be loaded: {type(exc).__name__}: {exc}"[:300]) from exc


def _json_file(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def model_folder(root: Path) -> Path:
    """The folder under root that holds model.pkl (a registered version may nest it, as Azure's outputs/)."""
    if (root / "model.pkl").is_file():
        return root
    found = sorted(root.rglob("model.pkl"), key=lambda p: len(p.parts))
    if not found:
        raise ModelContractError(f"no model.pkl under {root.name}")
    return found[0].parent


# -- Azure ML's scoring script: init() once, run(raw) per request ------------------------------
_served: Predictor | None = None


def init() -> None:
    """Load the deployment's model from $AZUREML_MODEL_DIR (Azure ML calls this once per worker)."""
    global _served
    _served = Predictor(model_folder(Path(os.environ["AZUREML_MODEL_DIR"])))


def run(raw_data: str) -> Any:
    """One request: {"data": [...]} scored as a batch, any other object as /api/predict; errors as
    {"error": ...} (Azure ML answers what run returns with 200, so the error is in the body)."""
    if _served is None:
        init()
    assert _served is not None
    try:
        body = json.loads(raw_data)
        if isinstance(body, Mapping) and "data" in body:
            return _served.score(body)
        return _served.predict(body)
    except ValueError:
        return {"error": "the request body is not JSON"}
    except ScoringError as exc:
        return {"error": exc.message}
