"""What every analysis source shares: the target of a measurement, and the two built-in
queries written once over a source's series names and label selector."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """What an analysis looks at: one revision of one ModelDeployment, and what a data plane
    names it by (the canary Service `<name>-canary` on `port`, the Deployment `<name>-<revision>`).

    `provider` is spec.traffic.provider; None where it is not known (then an unset source
    means the model server, and no source is checked against the provider)."""

    name: str
    namespace: str
    revision: str
    port: int = 8080
    protocol: str = "http"
    provider: str | None = None
    server: str | None = None
    """The runtime's metrics.source: where the model-server templates read by default."""

    @property
    def canary_service(self) -> str:
        """The Service of the canary role (modeldeploy.render.services.canary_service_name)."""
        return f"{self.name}-canary"

    @property
    def workload(self) -> str:
        """The Deployment of the revision under a canary strategy
        (modeldeploy.render.workload.deployment_name)."""
        return f"{self.name}-{self.revision}"


def label_value(text: str) -> str:
    """`text` as the inside of a double-quoted PromQL label value."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def labels(**pairs: str) -> str:
    """An exact-match selector body, in the order given: `a="x",b="y"`."""
    return ",".join(f'{name}="{label_value(value)}"' for name, value in pairs.items())


@dataclass(frozen=True)
class Source:
    """Where the built-in templates read one revision's requests and latency.

    requests: a counter of responses, labelled with the status code in `code_label`;
    server_errors: the regex of the codes counted as failures;
    latency_buckets: the `_bucket` series of a latency histogram whose `le` is in
    `latency_unit` ("s" or "ms"; the template always answers in seconds);
    selector: the label matchers that pick the target's series out of everything else;
    providers: the traffic providers under which the selector can match (None: any).
    """

    name: str
    requests: str
    code_label: str
    latency_buckets: str
    latency_unit: str
    selector: Callable[[Target], str]
    server_errors: str = "5.."
    providers: tuple[str, ...] | None = None

    def success_rate(self, target: Target, window: str) -> str:
        """Share of non-5xx responses of the target, 0..1. A target that fails every request
        has no series of a good code at all: the numerator is then 0, not "no data" (which
        would make the rollout wait for the inconclusive limit); a target with no requests
        still has no denominator, and so no data."""
        selector = self.selector(target)
        return (
            f'(sum(rate({self.requests}{{{selector},{self.code_label}!~"{self.server_errors}"}}[{window}]))'
            f" or vector(0)) / sum(rate({self.requests}{{{selector}}}[{window}]))"
        )

    def latency_p99(self, target: Target, window: str) -> str:
        """99th percentile latency of the target, in seconds."""
        query = quantile(0.99, self.latency_buckets, self.selector(target), window)
        return query if self.latency_unit == "s" else f"{query} / 1000"

    @property
    def templates(self) -> tuple[str, ...]:
        return ("success-rate", "error-ratio", "latency-p99")

    def query(self, template: str, target: Target, window: str) -> str:
        if template == "success-rate":
            return self.success_rate(target, window)
        if template == "error-ratio":
            return f"1 - ({self.success_rate(target, window)})"
        if template == "latency-p99":
            return self.latency_p99(target, window)
        raise ValueError(f"source {self.name} has no template {template} ({', '.join(self.templates)})")


def quantile(q: float, buckets: str, selector: str, window: str) -> str:
    """The q-quantile of a histogram's `_bucket` series over the target's pods."""
    return f"histogram_quantile({q:g}, sum by (le) (rate({buckets}{{{selector}}}[{window}])))"


def ratio(part: str, whole: str, selector: str, window: str, part_matchers: str = "") -> str:
    """rate(part) / rate(whole) of the target; a part that never happened counts 0 (a counter
    with no series yet is not "no data" while the whole has requests)."""
    matchers = f"{selector},{part_matchers}" if part_matchers else selector
    return f"(sum(rate({part}{{{matchers}}}[{window}])) or vector(0)) / sum(rate({whole}{{{selector}}}[{window}]))"


Query = Callable[[str, str], str]
"""PromQL from the target's selector and the window."""


@dataclass(frozen=True)
class ServerSource:
    """A model server's own series: one query per template it can answer, over the pods'
    series labelled namespace, model and revision by the scrape configuration."""

    name: str
    queries: Mapping[str, Query] = field(default_factory=dict)
    providers: tuple[str, ...] | None = None

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(self.queries)

    def query(self, template: str, target: Target, window: str) -> str:
        if template not in self.queries:
            raise ValueError(f"source {self.name} has no template {template} ({', '.join(self.templates)})")
        return self.queries[template](server_selector(target), window)


def server_selector(target: Target) -> str:
    """The pods of one revision: labels the scrape configuration copies from the pods' labels."""
    return labels(namespace=target.namespace, model=target.name, revision=target.revision)
