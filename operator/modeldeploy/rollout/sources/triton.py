"""triton: NVIDIA Triton Inference Server, its own /metrics on port 8002.

Counters `nv_inference_request_success` and `nv_inference_request_failure` (labels `model`,
`version`); latency percentiles only from the summary `nv_inference_request_summary_us`
(microseconds, label `quantile`), which Triton exports with
`--metrics-config summary_latencies=true` (the shipped template passes it). Quantiles of
summaries cannot be merged across pods: latency-p99 is the worst pod's.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import ServerSource


def _error_ratio(selector: str, window: str) -> str:
    failed = f"sum(rate(nv_inference_request_failure{{{selector}}}[{window}]))"
    succeeded = f"sum(rate(nv_inference_request_success{{{selector}}}[{window}]))"
    return f"{failed} / ({failed} + {succeeded})"


SOURCE = ServerSource(
    name="triton",
    queries={
        "error-ratio": _error_ratio,
        "latency-p99": lambda selector, window: (
            f'max(nv_inference_request_summary_us{{{selector},quantile="0.99"}}) / 1e6'
        ),
    },
)
