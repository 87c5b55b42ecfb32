"""tgi: Hugging Face Text Generation Inference, its own /metrics on the serving port.

Names from TGI's metrics reference (router, Rust `metrics` crate: counters carry no `_total`):
`tgi_request_count` and `tgi_request_failure{err}` counters; histograms in seconds
`tgi_request_duration` (end to end), `tgi_request_queue_duration`,
`tgi_request_mean_time_per_token_duration` (each request's mean time between tokens) and
`tgi_batch_forward_duration{method="prefill"|"decode"}`.

TGI has no time-to-first-token histogram: ttft-p95 is the 95th percentile of queue time plus
that of a prefill forward pass, an estimate of the time a request waits for its first token
(docs/runtimes.md). inter-token-latency-p95 is the 95th percentile of the requests' mean
time per token.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import ServerSource, quantile, ratio


def _ttft_p95(selector: str, window: str) -> str:
    queue = quantile(0.95, "tgi_request_queue_duration_bucket", selector, window)
    prefill = quantile(0.95, "tgi_batch_forward_duration_bucket", f'{selector},method="prefill"', window)
    return f"{queue} + {prefill}"


SOURCE = ServerSource(
    name="tgi",
    queries={
        "error-ratio": lambda selector, window: ratio(
            "tgi_request_failure", "tgi_request_count", selector, window
        ),
        "latency-p99": lambda selector, window: quantile(
            0.99, "tgi_request_duration_bucket", selector, window
        ),
        "ttft-p95": _ttft_p95,
        "inter-token-latency-p95": lambda selector, window: quantile(
            0.95, "tgi_request_mean_time_per_token_duration_bucket", selector, window
        ),
    },
)
