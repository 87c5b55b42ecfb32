"""Stand-ins for the model servers' own series: exactly the names and label sets vLLM, TGI,
Triton and MLServer expose, plus the namespace, model and revision labels the scrape
configuration copies from the pods (docs/runtimes.md).

Written out literally from each server's documentation (cited per function), not from
modeldeploy.rollout.sources, so a wrong name or selector there finds nothing here. Every model
has a stable revision beside its canary, with other numbers, so a selector that also caught the
stable pods would give another number.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

NAMESPACE = "ml"
CANARY_REVISION = "c4n4ry"
STABLE_REVISION = "5t4b1e"
REQUESTS_PER_SECOND = 100.0

Shares = tuple[tuple[str, float], ...]
Labels = tuple[tuple[str, str], ...]

# Healthy canary: 1% errors; end-to-end p99 = 0.5 + (0.99 - 0.98) / 0.02 * 0.5 = 0.75 s;
# first token p95 = 0.2 + (0.95 - 0.9) / 0.1 * 0.2 = 0.3 s; between tokens p95 = 0.0375 s.
# The failing canary: 20% errors, and every latency ten times as long.
E2E: Shares = (("0.1", 0.5), ("0.25", 0.9), ("0.5", 0.98), ("1", 1.0), ("+Inf", 1.0))
FIRST_TOKEN: Shares = (("0.1", 0.5), ("0.2", 0.9), ("0.4", 1.0), ("+Inf", 1.0))
BETWEEN_TOKENS: Shares = (("0.01", 0.5), ("0.025", 0.9), ("0.05", 1.0), ("+Inf", 1.0))
# TGI: queue p95 = 0.05 + (0.95 - 0.5) / 0.5 * 0.1 = 0.14 s; prefill p95 = 0.3 s (FIRST_TOKEN).
QUEUE: Shares = (("0.05", 0.5), ("0.15", 1.0), ("+Inf", 1.0))
STABLE_SHARES: Shares = (("0.001", 1.0), ("+Inf", 1.0))


def slower(shares: Shares, factor: float) -> Shares:
    return tuple(
        (bound if bound == "+Inf" else f"{float(bound) * factor:g}", share) for bound, share in shares
    )


@dataclass(frozen=True)
class Behaviour:
    error_share: float
    slowdown: float


HEALTHY = Behaviour(0.01, 1.0)
FAILING = Behaviour(0.2, 10.0)
STABLE = Behaviour(0.0, 1.0)
EXPECTED = {
    "healthy": {"error-ratio": 0.01, "latency-p99": 0.75, "ttft-p95": 0.3, "inter-token-latency-p95": 0.0375},
    "failing": {"error-ratio": 0.2, "latency-p99": 7.5, "ttft-p95": 3.0, "inter-token-latency-p95": 0.375},
}
"""By model, each template's value for the canary (TGI's ttft-p95 differs: see TGI_TTFT)."""
TGI_TTFT = {"healthy": 0.14 + 0.3, "failing": 1.4 + 3.0}


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    labels: Labels
    per_second: float = 0.0
    """Growth of a counter; a gauge (a summary's quantile) keeps `value`."""
    value: float = 0.0


class ServerExporter:
    """Serves Samples in the Prometheus text format, counters growing from construction."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.since = time.time()

    def exposition(self) -> str:
        elapsed = time.time() - self.since
        families: dict[tuple[str, str], list[str]] = {}
        for sample in self.samples:
            family = sample.name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
            value = sample.value if sample.per_second == 0 else sample.per_second * elapsed
            body = ",".join(f'{key}="{text}"' for key, text in sample.labels)
            families.setdefault((family, sample.kind), []).append(f"{sample.name}{{{body}}} {value!r}")
        lines = []
        for (name, kind), samples in families.items():
            lines += [f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"


def _pod(model: str, revision: str) -> Labels:
    return (("model", model), ("namespace", NAMESPACE), ("revision", revision))


def counter(name: str, labels: Labels, per_second: float) -> list[Sample]:
    # Rate 0 would read as a gauge here: a counter that never moves is served at a tiny rate.
    return [Sample(name, "counter", labels, per_second=per_second or 1e-9)]


def histogram(name: str, labels: Labels, per_second: float, shares: Shares) -> list[Sample]:
    return [
        *(
            Sample(f"{name}_bucket", "histogram", (*labels, ("le", bound)), per_second=share * per_second)
            for bound, share in shares
        ),
        Sample(f"{name}_sum", "histogram", labels, per_second=per_second * 0.1),
        Sample(f"{name}_count", "histogram", labels, per_second=per_second),
    ]


def vllm(model: str, revision: str, behaviour: Behaviour) -> list[Sample]:
    # vLLM V1 (vllm/v1/metrics/loggers.py): histograms labelled model_name and engine; HTTP
    # counts from prometheus-fastapi-instrumentator, status grouped to 2xx..5xx.
    pod = _pod(model, revision)
    engine = (*pod, ("engine", "0"), ("model_name", "meta-llama/Llama-3.1-8B-Instruct"))
    handler = (*pod, ("handler", "/v1/chat/completions"), ("method", "POST"))
    errors = REQUESTS_PER_SECOND * behaviour.error_share
    return [
        *counter("http_requests_total", (*handler, ("status", "2xx")), REQUESTS_PER_SECOND - errors),
        *(counter("http_requests_total", (*handler, ("status", "5xx")), errors) if errors else []),
        *histogram(
            "vllm:e2e_request_latency_seconds", engine, REQUESTS_PER_SECOND, slower(E2E, behaviour.slowdown)
        ),
        *histogram(
            "vllm:time_to_first_token_seconds",
            engine,
            REQUESTS_PER_SECOND,
            slower(FIRST_TOKEN, behaviour.slowdown),
        ),
        *histogram(
            "vllm:inter_token_latency_seconds",
            engine,
            REQUESTS_PER_SECOND,
            slower(BETWEEN_TOKENS, behaviour.slowdown),
        ),
    ]


def tgi(model: str, revision: str, behaviour: Behaviour) -> list[Sample]:
    # TGI metrics reference: counters without _total; histograms in seconds; failures by `err`.
    pod = _pod(model, revision)
    errors = REQUESTS_PER_SECOND * behaviour.error_share
    return [
        *counter("tgi_request_count", pod, REQUESTS_PER_SECOND),
        *counter("tgi_request_success", pod, REQUESTS_PER_SECOND - errors),
        *(counter("tgi_request_failure", (*pod, ("err", "generation")), errors) if errors else []),
        *histogram("tgi_request_duration", pod, REQUESTS_PER_SECOND, slower(E2E, behaviour.slowdown)),
        *histogram("tgi_request_queue_duration", pod, REQUESTS_PER_SECOND, slower(QUEUE, behaviour.slowdown)),
        *histogram(
            "tgi_batch_forward_duration",
            (*pod, ("method", "prefill")),
            REQUESTS_PER_SECOND,
            slower(FIRST_TOKEN, behaviour.slowdown),
        ),
        # Decode passes are many and fast: a query that forgot method="prefill" would see them.
        *histogram(
            "tgi_batch_forward_duration",
            (*pod, ("method", "decode")),
            50 * REQUESTS_PER_SECOND,
            STABLE_SHARES,
        ),
        *histogram(
            "tgi_request_mean_time_per_token_duration",
            pod,
            REQUESTS_PER_SECOND,
            slower(BETWEEN_TOKENS, behaviour.slowdown),
        ),
    ]


def triton(model: str, revision: str, behaviour: Behaviour) -> list[Sample]:
    # Triton metrics guide: counters by model and version; the summary (summary_latencies=true)
    # in microseconds with quantile labels.
    # Triton's own `model` label (the name in its model repository) is overwritten by the
    # pod's, which the scrape configuration sets (Prometheus keeps Triton's as exported_model).
    pod = (*_pod(model, revision), ("exported_model", "classifier"), ("version", "1"))
    errors = REQUESTS_PER_SECOND * behaviour.error_share
    p99_us = {1.0: 750_000.0, 10.0: 7_500_000.0}[behaviour.slowdown]
    return [
        *counter("nv_inference_request_success", pod, REQUESTS_PER_SECOND - errors),
        *counter("nv_inference_request_failure", pod, errors),
        *(
            Sample("nv_inference_request_summary_us", "summary", (*pod, ("quantile", q)), value=v)
            for q, v in (("0.5", p99_us / 10), ("0.9", p99_us / 2), ("0.99", p99_us))
        ),
        Sample("nv_inference_request_summary_us_count", "summary", pod, per_second=REQUESTS_PER_SECOND),
        Sample("nv_inference_request_summary_us_sum", "summary", pod, per_second=REQUESTS_PER_SECOND * 1e5),
    ]


def mlserver(model: str, revision: str, behaviour: Behaviour) -> list[Sample]:
    # MLServer REST metrics (starlette-exporter, prefix rest_server): method, path, status_code.
    route = (*_pod(model, revision), ("method", "POST"), ("path", "/v2/models/{model_name}/infer"))
    errors = REQUESTS_PER_SECOND * behaviour.error_share
    ok, failed = (*route, ("status_code", "200")), (*route, ("status_code", "500"))
    samples = [
        *counter("rest_server_requests_total", ok, REQUESTS_PER_SECOND - errors),
        *histogram(
            "rest_server_request_duration_seconds",
            ok,
            REQUESTS_PER_SECOND - errors,
            slower(E2E, behaviour.slowdown),
        ),
    ]
    if errors:
        samples += [
            *counter("rest_server_requests_total", failed, errors),
            *histogram(
                "rest_server_request_duration_seconds", failed, errors, slower(E2E, behaviour.slowdown)
            ),
        ]
    return samples


STAND_INS: dict[str, Callable[[str, str, Behaviour], list[Sample]]] = {
    "vllm": vllm,
    "tgi": tgi,
    "triton": triton,
    "mlserver": mlserver,
}


def all_samples(source: str) -> list[Sample]:
    """Models "healthy" and "failing", each with a canary and a stable revision."""
    make = STAND_INS[source]
    return [
        *make("healthy", CANARY_REVISION, HEALTHY),
        *make("healthy", STABLE_REVISION, STABLE),
        *make("failing", CANARY_REVISION, FAILING),
        *make("failing", STABLE_REVISION, STABLE),
    ]
