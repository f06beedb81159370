"""Train a random forest on the Titanic passenger list; runs unchanged on Azure ML and locally.

Reads <data-path>/titanic.csv (Kaggle's columns), logs accuracy on a held-out
split and the estimator count with MLflow (read by every backend), and writes outputs/model.pkl,
outputs/lookup.pkl and outputs/flags.pkl for the model API.
"""

import argparse
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

FEATURES = ["Pclass", "Age", "SibSp", "Parch", "Fare", "Gender", "Port"]
GENDER = {"female": 0, "male": 1}
PORT = {"C": 1, "S": 2, "Q": 3}

parser = argparse.ArgumentParser()
parser.add_argument("--data-path", dest="data_path", default="../data/titanic", help="data folder mounting point")
parser.add_argument("--estimators", dest="estimators", type=int, default=100, help="number of trees")
parser.add_argument("--seed", dest="seed", type=int, default=42, help="random seed, for repeatable results")
parser.add_argument(
    "--jobs", dest="jobs", type=int, default=-1, help="trees built at once; -1: every core this run may use"
)
parser.add_argument("--test-size", dest="test_size", type=float, default=0.2, help="share of rows held out")
args = parser.parse_args()  # an unknown argument fails the run, naming it: a typo never trains silently

# Run by hand there is no tracking server: MLflow 3's default store (sqlite:///mlflow.db) needs SQLAlchemy,
# which mlflow-skinny lacks. On Azure ML and the local backend MLFLOW_TRACKING_URI is set for the script.
if not os.environ.get("MLFLOW_TRACKING_URI"):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
    print("### No MLFLOW_TRACKING_URI set: metrics go to ./mlruns (MLflow's file store)")

data = pd.read_csv(os.path.join(args.data_path, "titanic.csv"))
data = data[["Survived", "Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]].dropna()
data["Gender"] = data["Sex"].map(GENDER)
data["Port"] = data["Embarked"].map(PORT)
data = data.dropna(subset=["Gender", "Port"])
print(f"### Training on {len(data):,} passengers with {args.estimators} estimators")

X = data[FEATURES].astype(float).to_numpy()
y = data["Survived"].astype(int).to_numpy()
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=args.test_size, random_state=args.seed, stratify=y)
model = RandomForestClassifier(n_estimators=args.estimators, random_state=args.seed, n_jobs=args.jobs)
model.fit(X_train, y_train)
accuracy = float(accuracy_score(y_test, model.predict(X_test)))
print(f"### Accuracy on {len(y_test)} held-out passengers: {accuracy:.4f}")

# MLflow, which every backend reads: Azure ML's workspace is the tracking store of v1 and v2 jobs alike,
# and the local backend points it at the run's folder.
mlflow.log_metric("accuracy", accuracy)
mlflow.log_metric("estimators", float(args.estimators))
mlflow.log_metric("training_rows", len(y_train))

# Files in outputs/ are uploaded with the run by Azure ML and become the model.
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as handle:
    pickle.dump(model, handle)

lookup = OrderedDict()
for name in ["Pclass", "Age", "SibSp", "Parch", "Fare"]:
    lookup[name] = 0
lookup["Gender"] = {"male": 1, "female": 0}
lookup["Port"] = {"Cherbourg": 1, "Southampton": 2, "Queenstown": 3}
with open("outputs/lookup.pkl", "wb") as handle:
    pickle.dump(lookup, handle)

with open("outputs/flags.pkl", "wb") as handle:
    pickle.dump(["died_proba", "survived_proba"], handle)
