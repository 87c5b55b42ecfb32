"""mlserver: Seldon MLServer, its own /metrics on port 8082 (settings metrics_port).

The REST server's starlette-exporter series, prefix `rest_server`:
`rest_server_requests_total{method, path, status_code}` and the histogram
`rest_server_request_duration_seconds{method, path, status_code}` in seconds. (The inference
counters `model_infer_request_success` / `_failure` count model errors only, not a refused
request, so the HTTP status is what judges the canary.)
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import ServerSource, quantile, ratio

SOURCE = ServerSource(
    name="mlserver",
    queries={
        "error-ratio": lambda selector, window: ratio(
            "rest_server_requests_total", "rest_server_requests_total", selector, window, 'status_code=~"5.."'
        ),
        "latency-p99": lambda selector, window: quantile(
            0.99, "rest_server_request_duration_seconds_bucket", selector, window
        ),
    },
)
