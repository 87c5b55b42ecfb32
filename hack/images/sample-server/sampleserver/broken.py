"""The estimator of the `iris-broken` model: it unpickles and loads like any other, so the server
becomes ready, but every prediction raises, so every inference request answers HTTP 5xx.

Pickled by module path: this module must be importable where the model is served (the image puts
/opt/sample-server on PYTHONPATH).
"""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression


class BrokenPrediction(RuntimeError):
    """What every prediction of iris-broken raises."""


class BrokenClassifier(LogisticRegression):
    """A fitted LogisticRegression whose predictions always fail."""

    def predict(self, X: Any) -> Any:
        raise BrokenPrediction("iris-broken: this model is built to fail every prediction")

    def predict_proba(self, X: Any) -> Any:
        raise BrokenPrediction("iris-broken: this model is built to fail every prediction")
