"""Aliases, gates, archiving and version notes (amllib/promotion.py) on every backend the `backend` fixture yields:
the local registry's row, and on Azure (both SDKs) the alias book blob in the default datastore."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from amllib.backends.base import Backend, RunSpec, RunStatus
from amllib.errors import Conflict, InvalidInput, ModelNotFound
from amllib.promotion import Change, Gate, GateRefused, apply, candidate_version, set_archived
from amllib.training import finish_run

MODEL = "alias-model"


def registered(backend: Backend, data_dir: Path, accuracies: list[float]) -> None:
    """One version per accuracy, each tagged with it (update_version, as a user editing tags would)."""
    backend.upload_data(data_dir, target_path="test-data")
    for index, accuracy in enumerate(accuracies, start=1):
        spec = RunSpec(script="mlflow_logging.py", experiment="tests", datapath="test-data", compute="local-cluster")
        run_id = backend.submit_run(spec)
        assert backend.wait_for_run(run_id, timeout=120, poll=0.2).status == RunStatus.COMPLETED
        made = finish_run(backend, run_id, model_name=MODEL).model_version
        assert made is not None and made.version == index
        backend.update_version(MODEL, index, tags={"accuracy": accuracy})


def test_an_alias_moves_through_its_gate_and_keeps_its_history(backend: Backend, data_dir: Path) -> None:
    registered(backend, data_dir, [0.80, 0.75, 0.90])
    gate = Gate.parse("accuracy:max:0.01")
    book, verdict = apply(backend, MODEL, Change("production", 1, by="ci", reason="first"), gate=gate)
    assert book.holder("production") == 1 and verdict.reason == "the alias is unset"
    assert backend.resolve_version(MODEL, alias="production").version == 1
    with pytest.raises(GateRefused) as refused:
        apply(backend, MODEL, Change("production", 2, by="ci"), gate=gate)
    assert (refused.value.verdict.candidate, refused.value.verdict.holder) == (0.75, 0.80)
    assert "version 2 (accuracy 0.75) does not beat version 1 (0.8)" in str(refused.value)
    apply(backend, MODEL, Change("production", 3, by="alice", reason="better", approved_by="bob"), gate=gate)
    apply(backend, MODEL, Change("staging", 2, by="ci"))
    apply(backend, MODEL, Change("staging", None, by="ci", reason="done"))
    book = backend.read_aliases(MODEL)
    assert book.aliases.keys() == {"production"} and book.holder("production") == 3
    assert book.aliases["production"]["by"] == "alice"
    moves = [(h["alias"], h["from"], h["to"], h["by"]) for h in book.history]
    assert moves == [
        ("production", None, 1, "ci"),
        ("production", 1, 3, "alice"),
        ("staging", None, 2, "ci"),
        ("staging", 2, None, "ci"),
    ]
    assert book.history[1]["gate"]["candidate"] == 0.90 and book.history[1]["approved_by"] == "bob"
    with pytest.raises(ModelNotFound, match="no alias 'canary'"):
        backend.resolve_version(MODEL, alias="canary")
    with pytest.raises(InvalidInput, match="alias 'Prod!'"):
        apply(backend, MODEL, Change("Prod!", 1, by="ci"))
    with pytest.raises(ModelNotFound, match="no version 9"):
        apply(backend, MODEL, Change("production", 9, by="ci"))


def test_an_archived_version_is_never_latest_best_or_a_new_holder(backend: Backend, data_dir: Path) -> None:
    registered(backend, data_dir, [0.80, 0.95])
    apply(backend, MODEL, Change("production", 2, by="ci"))
    set_archived(backend, MODEL, 2, True)
    assert backend.resolve_version(MODEL).version == 1
    assert backend.resolve_version(MODEL, best_by="accuracy").version == 1
    assert backend.resolve_version(MODEL, alias="production").version == 2  # an alias it holds stays
    with pytest.raises(Conflict, match="archived"):
        apply(backend, MODEL, Change("staging", 2, by="ci"))
    assert candidate_version(backend, MODEL, use_best=True).version == 1
    set_archived(backend, MODEL, 2, False)
    assert backend.resolve_version(MODEL, best_by="accuracy").version == 2
    noted = backend.update_version(MODEL, 1, description="the first one")
    assert noted.description == "the first one"
    assert backend.list_model_versions(MODEL)[0].description == "the first one"
    with pytest.raises(ModelNotFound):
        backend.update_version(MODEL, 7, description="x")


def test_two_moves_of_one_alias_at_once_both_land_in_order(backend: Backend, data_dir: Path) -> None:
    registered(backend, data_dir, [0.8, 0.9])
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def move(version: int) -> None:
        start.wait()
        try:
            apply(backend, MODEL, Change("production", version, by=f"writer-{version}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(v,)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    book = backend.read_aliases(MODEL)
    assert len(book.history) == 2
    first, second = book.history
    assert first["from"] is None and second["from"] == first["to"]  # the second saw the first's move
    assert book.holder("production") == second["to"]  # one holder: the last move's
