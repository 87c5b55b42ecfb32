"""vllm: vLLM's OpenAI-compatible server, its own /metrics on the serving port.

Request histograms of the V1 engine (vllm/v1/metrics/loggers.py; docs "Production Metrics"),
in seconds, labelled `model_name` and `engine`:
`vllm:e2e_request_latency_seconds`, `vllm:time_to_first_token_seconds`,
`vllm:inter_token_latency_seconds` (releases before it named the same histogram
`vllm:time_per_output_token_seconds`, and some emit both with identical values: the new name is
read first, the old one only when the new one is absent). HTTP responses come from
prometheus-fastapi-instrumentator: `http_requests_total{handler, method, status}` with the status
grouped as `2xx` .. `5xx`.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import ServerSource, quantile, ratio


def _inter_token_p95(selector: str, window: str) -> str:
    return (
        f"{quantile(0.95, 'vllm:inter_token_latency_seconds_bucket', selector, window)} or "
        f"{quantile(0.95, 'vllm:time_per_output_token_seconds_bucket', selector, window)}"
    )


SOURCE = ServerSource(
    name="vllm",
    queries={
        "error-ratio": lambda selector, window: ratio(
            "http_requests_total", "http_requests_total", selector, window, 'status="5xx"'
        ),
        "latency-p99": lambda selector, window: quantile(
            0.99, "vllm:e2e_request_latency_seconds_bucket", selector, window
        ),
        "ttft-p95": lambda selector, window: quantile(
            0.95, "vllm:time_to_first_token_seconds_bucket", selector, window
        ),
        "inter-token-latency-p95": _inter_token_p95,
    },
)
