"""Log setup: plain lines for people, one JSON object per line for log pipelines."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import kopf


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # kopf attaches the object it is handling to its records.
        k8s_object = getattr(record, "k8s_ref", None)
        if isinstance(k8s_object, dict):
            entry["object"] = {key: k8s_object.get(key) for key in ("namespace", "name", "kind")}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, verbose: bool) -> None:
    kopf.configure(
        verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.PLAIN
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    logging.getLogger("modeldeploy").setLevel(logging.DEBUG if verbose else logging.INFO)
    # kopf reports every watch-event handler call; the operator logs what it does itself.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
