"""Trains the sample models at image build time, from the iris data scikit-learn ships (no
download), into OUT/<name>/: each a complete MLServer model directory (model-settings.json and
model.joblib) serving the model `iris`.

    python -m sampleserver.train OUT

- iris-v1: LogisticRegression;
- iris-v2: a DecisionTreeClassifier (another model, the same answers on the well-known rows);
- iris-broken: loads, becomes ready, and every prediction raises (sampleserver.broken);
- iris-crash: its model.joblib is cut short, so loading it fails and the server exits non-zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from sampleserver.broken import BrokenClassifier

MODEL_NAME = "iris"
MODEL_FILE = "model.joblib"
# Well-known rows of the iris data and their classes: setosa, versicolor, virginica.
CHECK_ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
CHECK_CLASSES = [0, 1, 2]


def model_settings(version: str, description: str) -> dict[str, Any]:
    return {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "platform": f"scikit-learn {sklearn.__version__}",
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
        "parameters": {"uri": f"./{MODEL_FILE}", "version": version, "extra": {"description": description}},
    }


def write(out: Path, name: str, model: Any, version: str, description: str) -> Path:
    directory = out / name
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / MODEL_FILE)
    settings = model_settings(version, description)
    (directory / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return directory


def main(out: Path) -> None:
    iris = load_iris()
    features, classes = iris.data.astype(np.float32), iris.target

    v1 = LogisticRegression(max_iter=1000).fit(features, classes)
    v2 = DecisionTreeClassifier(random_state=0).fit(features, classes)
    for name, model in (("iris-v1", v1), ("iris-v2", v2)):
        predicted = model.predict(CHECK_ROWS).tolist()
        if predicted != CHECK_CLASSES:
            sys.exit(f"train: {name} predicts {predicted} for the check rows, expected {CHECK_CLASSES}")
        accuracy = model.score(features, classes)
        write(
            out,
            name,
            model,
            name.removeprefix("iris-"),
            f"{type(model).__name__}, training accuracy {accuracy:.3f}",
        )
        print(f"train: {name} {type(model).__name__} accuracy {accuracy:.3f}, check rows -> {predicted}")

    broken = BrokenClassifier(max_iter=1000).fit(features, classes)
    write(out, "iris-broken", broken, "broken", "loads and becomes ready; every prediction raises (HTTP 500)")
    print("train: iris-broken BrokenClassifier (every prediction raises)")

    # A model file cut short, as an interrupted upload leaves it: unpickling it fails.
    crash = write(out, "iris-crash", v1, "crash", "model.joblib cut short: loading fails, the server exits 1")
    whole = (crash / MODEL_FILE).read_bytes()
    (crash / MODEL_FILE).write_bytes(whole[: len(whole) // 5])
    try:
        joblib.load(crash / MODEL_FILE)
    except Exception as error:
        print(f"train: iris-crash fails to load as meant: {type(error).__name__}: {error}")
    else:
        sys.exit("train: iris-crash loaded, it must not")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sampleserver.train OUT")
    main(Path(sys.argv[1]))
