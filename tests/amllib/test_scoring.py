"""amllib/scoring.py against the seed's model API contract (the Batcomputer model API's request shapes), and as
Azure ML's score.py (init/run), with a real scikit-learn model in the three pickles."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from amllib import scoring
from amllib.scoring import ModelContractError, Predictor, ScoringError

LOOKUP = OrderedDict(
    [("Pclass", 0), ("Age", 0), ("Gender", {"male": 1, "female": 0}), ("Port", {"Cherbourg": 1, "Southampton": 2})]
)
FLAGS = ["died_proba", "survived_proba"]
BODY = {"Pclass": 1, "Age": 22.5, "Gender": "female", "Port": "Cherbourg"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    features = np.column_stack(
        [rng.integers(1, 4, 300), rng.uniform(1, 80, 300), rng.integers(0, 2, 300), rng.integers(1, 3, 300)]
    )
    labels = (features[:, 0] == 1) | (features[:, 2] == 0)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, labels)
    made = tmp_path_factory.mktemp("model") / "outputs"
    made.mkdir()
    for name, value in (("model.pkl", model), ("lookup.pkl", LOOKUP), ("flags.pkl", FLAGS)):
        (made / name).write_bytes(pickle.dumps(value))
    (made / "metadata.json").write_text(json.dumps({"name": "titanic-model", "version": 3}))
    return made


def test_a_prediction_is_the_first_row_of_predict_proba_paired_with_the_flags(folder: Path) -> None:
    predictor = Predictor(folder, info={"model": "titanic-model", "version": 3, "alias": "production"})
    answer = predictor.predict(BODY)
    expected = predictor.model.predict_proba([[1, 22.5, 0, 1]])[0]  # categories mapped through lookup, in its order
    assert answer == {"died_proba": float(expected[0]), "survived_proba": float(expected[1])}
    assert predictor.predict({**BODY, "extra": "ignored"}) == answer  # keys beyond lookup are not read
    assert predictor.params() == {
        "Pclass": 0,
        "Age": 0,
        "Gender": ["male", "female"],
        "Port": ["Cherbourg", "Southampton"],
    }
    info = predictor.info()
    assert info["status"] == "alive" and info["metadata"]["version"] == 3 and info["alias"] == "production"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({k: v for k, v in BODY.items() if k != "Age"}, "Value: 'Age' not found in model lookup"),  # as Batcomputer
        ({**BODY, "Port": "Atlantis"}, "Value: 'Port' not found in model lookup"),  # an unknown category, too
        ({**BODY, "Age": "22"}, "Value: 'Age' must be a finite number, not \"22\""),  # Batcomputer: a 500
        ({**BODY, "Age": True}, "Value: 'Age' must be a finite number, not true"),
        ({**BODY, "Age": float("nan")}, "Value: 'Age' must be a finite number, not nan"),
        ({**BODY, "Gender": 1}, "Value: 'Gender' is one of male, female, not 1"),
        ([1, 2], "the body must be a JSON object"),
    ],
)
def test_what_the_model_cannot_read_is_a_400_naming_the_field(folder: Path, body: object, error: str) -> None:
    with pytest.raises(ScoringError) as caught:
        Predictor(folder).predict(body)
    assert caught.value.status == 400 and caught.value.message.startswith(error)


def test_azure_mls_batch_shape_and_its_limits(folder: Path) -> None:
    predictor = Predictor(folder)
    scored = predictor.score({"data": [BODY, {**BODY, "Pclass": 3, "Gender": "male"}]})
    assert len(scored["predictions"]) == 2 and scored["predictions"][0] == predictor.predict(BODY)
    with pytest.raises(ScoringError, match="row 1: Value: 'Age'"):
        predictor.score({"data": [BODY, {"Pclass": 1}]})
    with pytest.raises(ScoringError, match="data"):
        predictor.score({"rows": [BODY]})
    with pytest.raises(ScoringError, match="at most 1000"):
        predictor.score({"data": [BODY] * 1001})


def test_the_same_module_is_an_azure_score_py(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(folder.parent))  # Azure mounts the version's files under it
    scoring.init()
    assert scoring.run(json.dumps(BODY)) == Predictor(folder).predict(BODY)
    assert len(scoring.run(json.dumps({"data": [BODY]}))["predictions"]) == 1
    assert scoring.run(json.dumps({"Pclass": 1})) == {"error": "Value: 'Age' not found in model lookup"}
    assert scoring.run("{not json") == {"error": "the request body is not JSON"}


def test_a_folder_without_the_contract_is_refused_with_what_is_missing(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ModelContractError, match=r"lack lookup\.pkl, flags\.pkl"):
        (tmp_path / "model.pkl").write_bytes((folder / "model.pkl").read_bytes())
        Predictor(tmp_path)
    (tmp_path / "lookup.pkl").write_bytes(pickle.dumps([1, 2]))
    (tmp_path / "flags.pkl").write_bytes(pickle.dumps(FLAGS))
    with pytest.raises(ModelContractError, match=r"lookup\.pkl is not a mapping"):
        Predictor(tmp_path)
    (tmp_path / "lookup.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelContractError, match=r"lookup\.pkl could not be loaded"):
        Predictor(tmp_path)
