"""Real requests through a real Gateway API data plane: Traefik (started by `hack/cluster up
--real-node`) routes by the HTTPRoute the operator writes to MLServer pods on the real node.

Which version answered is read from each response (`model_version`, set in the models'
model-settings.json), so every count is of real requests, not of the objects we wrote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from modeldeploy.api.models import ModelDeploymentSpec
from modeldeploy.render.revision import revision_of
from tests.cluster.conftest import Kubectl
from tests.cluster.modeldeployments import condition, wait_condition, wait_status
from tests.cluster.real_serving import (
    IRIS_CLASSES,
    Gateway,
    ModelStore,
    served_model,
    set_weight,
)
from tests.cluster.waiting import wait_for
from tests.prometheus_server import running_prometheus

pytestmark = pytest.mark.e2e

SERVING_TIMEOUT = 180
REQUESTS = 2000
# Two-sided binomial tolerance at p = 0.001: |count - n·w| <= 3.29 standard deviations.
Z_0_001 = 3.29


@pytest.fixture
def host(kubectl: Kubectl, namespace: str, store: ModelStore) -> str:
    kubectl.apply(store.credentials(), "-n", namespace)
    return f"iris.{namespace}.example.com"


def routed_model(store: ModelStore, gateway: Gateway, host: str, model: str, **spec: Any) -> dict[str, Any]:
    traffic = {
        "provider": "gateway-api",
        "gateway": gateway.reference,
        "hosts": [host],
        **spec.pop("traffic", {}),
    }
    return served_model("iris", store, model, traffic=traffic, **spec)


def within_binomial_tolerance(count: int, requests: int, weight: int) -> bool:
    share = weight / 100
    deviation = Z_0_001 * math.sqrt(requests * share * (1 - share))
    return abs(count - requests * share) <= deviation


def serve_v1(kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str) -> None:
    """v1 stable and answering through the gateway."""
    kubectl.apply(routed_model(store, gateway, host, "iris-v1"), "-n", namespace)
    wait_condition(kubectl, namespace, "iris", "Ready", "True", timeout=SERVING_TIMEOUT)
    wait_for("v1 through the gateway", lambda: gateway.versions(host, 1) == Counter({"v1": 1}), 60)


def apply_canary(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str, stored: str, **spec: Any
) -> str:
    """A new model version over the stable one; returns the canary's revision."""
    canary = routed_model(store, gateway, host, stored, **spec)
    kubectl.apply(canary, "-n", namespace)
    return revision_of(ModelDeploymentSpec.model_validate(canary["spec"]))


def serve_v1_then_canary(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str, **spec: Any
) -> str:
    serve_v1(kubectl, namespace, store, gateway, host)
    return apply_canary(kubectl, namespace, store, gateway, host, "iris-v2", **spec)


def test_a_canary_gets_its_weight_of_real_requests(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str
) -> None:
    serve_v1_then_canary(kubectl, namespace, store, gateway, host, rollout={"canary": {"weight": 10}})
    wait_status(kubectl, namespace, "iris", timeout=SERVING_TIMEOUT, canaryWeight=10)
    for weight in (10, 50):
        set_weight(kubectl, namespace, weight)
        wait_status(kubectl, namespace, "iris", canaryWeight=weight)
        # The data plane follows the route within a moment: wait until the canary shows up at
        # about its share, then count a fresh batch.
        wait_for(f"Traefik to split at {weight}", lambda w=weight: gateway.versions(host, 200)["v2"] > 0)
        counts = gateway.versions(host, REQUESTS)
        assert sum(counts.values()) == REQUESTS and set(counts) <= {"v1", "v2"}, counts
        assert within_binomial_tolerance(counts["v2"], REQUESTS, weight), (weight, counts)


def test_the_header_rule_sends_every_matching_request_to_the_canary(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str
) -> None:
    serve_v1_then_canary(
        kubectl,
        namespace,
        store,
        gateway,
        host,
        rollout={"canary": {"weight": 10}},
        traffic={"headerRouting": {"name": "x-canary", "value": "always"}},
    )
    wait_status(kubectl, namespace, "iris", timeout=SERVING_TIMEOUT, canaryWeight=10)
    wait_for(
        "the header rule", lambda: gateway.versions(host, 20, {"x-canary": "always"}) == Counter({"v2": 20})
    )
    assert gateway.versions(host, 500, {"x-canary": "always"}) == Counter({"v2": 500})
    # Any other value falls through to the weighted split.
    assert set(gateway.versions(host, 200, {"x-canary": "sometimes"})) == {"v1", "v2"}


def test_promotion_moves_every_request_to_v2_without_a_failed_request(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str
) -> None:
    serve_v1_then_canary(kubectl, namespace, store, gateway, host, rollout={"canary": {"weight": 50}})
    wait_status(kubectl, namespace, "iris", timeout=SERVING_TIMEOUT, canaryWeight=50)
    with gateway.load(host) as during:
        set_weight(kubectl, namespace, 100)
        body = wait_status(
            kubectl, namespace, "iris", timeout=SERVING_TIMEOUT, phase="Stable", canaryRevision=None
        )
        wait_for(
            "v1's Deployment to be retired",
            lambda: (
                len(
                    kubectl.json("get", "deploy", "-n", namespace, "-l", "modeldeploy.io/model=iris")["items"]
                )
                == 1
            ),
        )
    assert during.failures == [], during.failures[:5]
    assert during.answers["v2"] > 0, during.answers
    assert gateway.versions(host, 500) == Counter({"v2": 500})
    assert condition(body, "Ready")["status"] == "True"


def test_every_answer_through_the_gateway_is_a_correct_prediction(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str
) -> None:
    kubectl.apply(routed_model(store, gateway, host, "iris-v1"), "-n", namespace)
    wait_condition(kubectl, namespace, "iris", "Ready", "True", timeout=SERVING_TIMEOUT)
    # Traefik serves the route a moment after the operator writes it.
    wait_for("an answer through the gateway", lambda: gateway.predict(host)[0] == 200, 60)
    assert gateway.predict(host) == (200, IRIS_CLASSES)


# Each measurement reads a rate over one interval of Traefik's counters, scraped twice a second;
# a loaded machine can leave a short window without two samples (no data), hence the room for
# inconclusive measurements.
ANALYSIS_INTERVAL_SECONDS = 4
INCONCLUSIVE_LIMIT = 5


@pytest.fixture(scope="module")
def prometheus(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping Traefik's own metrics: what the analysis reads."""
    with running_prometheus(gateway.admin, tmp_path_factory.mktemp("prometheus")) as address:
        yield address


def automated(prometheus: str) -> dict[str, Any]:
    """Half the requests to the canary, its success rate through Traefik judged twice, then 100 %."""
    return {
        "canary": {
            "steps": [{"weight": 50}, {"analysis": {"count": 2}}, {"weight": 100}],
            "analysis": {
                "prometheus": {"address": prometheus},
                "interval": f"{ANALYSIS_INTERVAL_SECONDS}s",
                "failureLimit": 0,
                "inconclusiveLimit": INCONCLUSIVE_LIMIT,
                "metrics": [
                    {"name": "success-rate", "template": "success-rate", "source": "traefik", "min": 0.95}
                ],
            },
        }
    }


def test_a_healthy_canary_judged_on_traefiks_metrics_is_promoted(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str, prometheus: str
) -> None:
    serve_v1(kubectl, namespace, store, gateway, host)
    with gateway.load(host) as during:
        revision = apply_canary(
            kubectl, namespace, store, gateway, host, "iris-v2", rollout=automated(prometheus)
        )
        body = wait_status(
            kubectl, namespace, "iris", timeout=SERVING_TIMEOUT, phase="Stable", stableRevision=revision
        )
    runs = [run for run in body["status"]["rollout"]["analysisRuns"] if run["verdict"] != "Inconclusive"]
    assert [run["verdict"] for run in runs] == ["Successful", "Successful"], runs
    assert all(run["value"] == pytest.approx(1.0) for run in runs), runs
    assert during.failures == [], during.failures[:5]
    # The stable Service's endpoints follow its new selector a moment after the promotion.
    wait_for("every request on v2", lambda: gateway.versions(host, 200) == Counter({"v2": 200}), 30)


def test_a_canary_failing_real_requests_is_rolled_back_on_traefiks_metrics(
    kubectl: Kubectl, namespace: str, store: ModelStore, gateway: Gateway, host: str, prometheus: str
) -> None:
    serve_v1(kubectl, namespace, store, gateway, host)
    with gateway.load(host) as during:
        apply_canary(kubectl, namespace, store, gateway, host, "iris-broken", rollout=automated(prometheus))
        body = wait_condition(
            kubectl, namespace, "iris", "Degraded", "True", reason="AnalysisFailed", timeout=SERVING_TIMEOUT
        )
    assert body["status"]["phase"] == "RolledBack"
    message = condition(body, "Degraded")["message"]
    # The metric, the value the data plane measured (every canary request failed), the threshold.
    assert "success-rate = 0" in message and "below min 0.95" in message, message
    # The broken model's own 500s, and 502s from its pod scaled to zero at once (these tests set
    # scaleDownDelaySeconds 0; a rollback ignores the delay today) while Traefik still sent to it.
    assert during.failures and all(
        failure.startswith(("HTTP 500", "HTTP 502")) for failure in during.failures
    )
    wait_status(kubectl, namespace, "iris", canaryWeight=0)
    wait_for("every request back on v1", lambda: gateway.versions(host, 200) == Counter({"v1": 200}), 30)
