"""istio: the standard metrics of Istio's sidecars (istio.io, "Istio Standard Metrics").

- `istio_requests_total`: a counter of requests, labelled among others `response_code`,
  `reporter` (`source` or `destination`), `destination_workload` and
  `destination_workload_namespace`;
- `istio_request_duration_milliseconds`: a histogram of request duration in milliseconds,
  with the same labels.

The series of one revision are those its own sidecars report (`reporter="destination"`,
as Flagger's istio checks do), for the workload that is the revision's Deployment,
`<name>-<revision>`: they count every request the revision served, whichever route (an
Istio VirtualService, Istio's Gateway API, any other router in front of the mesh) sent it.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import Source, Target, labels


def _selector(target: Target) -> str:
    return labels(
        reporter="destination",
        destination_workload_namespace=target.namespace,
        destination_workload=target.workload,
    )


SOURCE = Source(
    name="istio",
    requests="istio_requests_total",
    code_label="response_code",
    latency_buckets="istio_request_duration_milliseconds_bucket",
    latency_unit="ms",
    selector=_selector,
)
