"""Predict whether a street crime ends with someone caught; runs unchanged on Azure ML and locally.

Reads <data-path>/crime.zip holding YYYY-MM/*.csv files in the police street-crime
layout, trains a random forest on force, crime type and month, logs accuracy,
estimators (MLflow) and a crime_index.json artifact, and writes outputs/model.pkl, lookup.pkl
and flags.pkl for the model API.
"""

import argparse
import glob
import os
import pickle
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

# Outcomes that mean a suspect was identified and dealt with.
CAUGHT = {
    "Awaiting court outcome",
    "Court result unavailable",
    "Defendant found not guilty",
    "Local resolution",
    "Offender given a caution",
    "Offender given a drugs possession warning",
    "Offender given penalty notice",
    "Offender sent to prison",
    "Offender fined",
    "Offender given community sentence",
    "Suspect charged as part of another case",
    "Formal action is not in the public interest",
}

parser = argparse.ArgumentParser()
parser.add_argument("--data-path", dest="data_path", default="../data/batcomputer", help="data folder mounting point")
parser.add_argument("--estimators", dest="estimators", type=int, default=100, help="number of trees")
parser.add_argument("--seed", dest="seed", type=int, default=42, help="random seed, for repeatable results")
parser.add_argument(
    "--jobs", dest="jobs", type=int, default=-1, help="trees built at once; -1: every core this run may use"
)
args = parser.parse_args()  # an unknown argument fails the run, naming it: a typo never trains silently

# Run by hand there is no tracking server: MLflow 3's default store (sqlite:///mlflow.db) needs SQLAlchemy,
# which mlflow-skinny lacks. On Azure ML and the local backend MLFLOW_TRACKING_URI is set for the script.
if not os.environ.get("MLFLOW_TRACKING_URI"):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
    print("### No MLFLOW_TRACKING_URI set: metrics go to ./mlruns (MLflow's file store)")

with tempfile.TemporaryDirectory() as unzip_dir:
    with zipfile.ZipFile(os.path.join(args.data_path, "crime.zip")) as archive:
        archive.extractall(unzip_dir)
    files = sorted(glob.glob(os.path.join(unzip_dir, "*", "*.csv")))
    if not files:
        raise SystemExit("crime.zip holds no YYYY-MM/*.csv files")
    data = pd.concat((pd.read_csv(f) for f in files), ignore_index=True)

data = data[["Month", "Reported by", "Crime type", "Last outcome category"]].dropna()
print(f"### Working with a training set of {len(data):,} rows from {len(files)} files")
mlflow.log_metric("training_rows", len(data))

forces = sorted(data["Reported by"].unique())
crimes = sorted(data["Crime type"].unique())
force_codes = {force: i for i, force in enumerate(forces)}
crime_codes = {crime: i for i, crime in enumerate(crimes)}
features = pd.DataFrame(
    {
        "force": data["Reported by"].map(force_codes),
        "crime": data["Crime type"].map(crime_codes),
        "month": data["Month"].astype(str).str[-2:].astype(int),
    }
)
y = data["Last outcome category"].isin(CAUGHT).astype(int).to_numpy()

X_train, X_test, y_train, y_test = train_test_split(features.to_numpy(), y, test_size=1 / 11, random_state=args.seed)
model = RandomForestClassifier(n_estimators=args.estimators, random_state=args.seed, n_jobs=args.jobs)
model.fit(X_train, y_train)
accuracy = float(accuracy_score(y_test, model.predict(X_test)))
print(f"### Accuracy on {len(y_test):,} held-out rows: {accuracy:.4f}")

month = 7
caught_column = list(model.classes_).index(1) if 1 in model.classes_ else None
crime_index = []
for crime, ci in crime_codes.items():
    for force, fi in force_codes.items():
        proba = model.predict_proba([[fi, ci, month]])[0]
        caught = float(proba[caught_column]) if caught_column is not None else 0.0
        crime_index.append({"force": force, "crime": crime, "caught": caught})

# MLflow, which every backend reads (the v1 Run.log_row table is an artifact in MLflow terms).
mlflow.log_dict({"rows": crime_index}, "crime_index.json")
mlflow.log_metric("accuracy", accuracy)
mlflow.log_metric("estimators", float(args.estimators))

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as handle:
    pickle.dump(model, handle)

lookup = OrderedDict()
lookup["force"] = force_codes
lookup["crime"] = crime_codes
lookup["month"] = 0
with open("outputs/lookup.pkl", "wb") as handle:
    pickle.dump(lookup, handle)

with open("outputs/flags.pkl", "wb") as handle:
    pickle.dump(["notCaughtProb", "caughtProb"], handle)
