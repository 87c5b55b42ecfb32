"""model-server: a convention of modeldeploy's own, for servers instrumented to follow it.

- `modeldeploy_requests_total{code}`: a counter of requests by HTTP status code;
- `modeldeploy_request_duration_seconds`: a histogram of request latency, in seconds;

both labelled `namespace`, `model` and `revision`, which the scrape configuration adds from
the pod's namespace and its `modeldeploy.io/model` and `modeldeploy.io/revision` labels
(docs/rollout.md has the relabelling). No model server emits these by itself.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import Source, Target, labels

REQUESTS_METRIC = "modeldeploy_requests_total"
LATENCY_METRIC = "modeldeploy_request_duration_seconds"


def _selector(target: Target) -> str:
    return labels(namespace=target.namespace, model=target.name, revision=target.revision)


SOURCE = Source(
    name="model-server",
    requests=REQUESTS_METRIC,
    code_label="code",
    latency_buckets=f"{LATENCY_METRIC}_bucket",
    latency_unit="s",
    selector=_selector,
)
