"""Traffic routers: rendering every provider and reading the live objects back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from modeldeploy.api.models import (
    HEADER_ROUTING_PROVIDERS,
    MIRROR_PROVIDERS,
    PROVIDERS,
    HeaderRouting,
    Mirror,
    ModelDeployment,
)
from modeldeploy.render import common
from modeldeploy.traffic import ROUTERS, Routing, router_for
from modeldeploy.traffic.base import normalized_duration, percent_of, whole_seconds

NAME = "sentiment"
NAMESPACE = "ml"
STABLE = "7f9c2d0000"
CANARY = "1b03e80000"
WEIGHTS = (0, 10, 50, 100)


def model(provider: str, protocol: str = "http", **traffic: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "6c0ffee0-0000-4000-8000-000000000001"},
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", "port": 8080, "protocol": protocol},
                "traffic": {"provider": provider, **traffic},
            },
        }
    )


def routing(weight: int, canary: str | None = CANARY) -> Routing:
    # Ready replicas in the same proportion, so the service provider reads back `weight` too.
    return Routing(
        stable_revision=STABLE,
        canary_revision=canary,
        canary_weight=weight,
        canary_ready_replicas=weight if canary else 0,
        stable_ready_replicas=100 - weight if canary else 10,
    )


def applied_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The fieldsV1 the API server records for our apply of `obj`: labels and annotations key by
    key, owner references by uid, a Service's ports by port and protocol, and every other list
    whole (Gateway API, Istio, SMI and Ingress declare theirs atomic, as is a Service's selector)."""
    metadata = obj["metadata"]
    fields: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        if metadata.get(key):
            fields[f"f:{key}"] = {f"f:{name}": {} for name in metadata[key]}
    if metadata.get("ownerReferences"):
        fields["f:ownerReferences"] = {
            json.dumps({"uid": ref["uid"]}, separators=(",", ":")): {".": {}, **{f"f:{k}": {} for k in ref}}
            for ref in metadata["ownerReferences"]
        }
    spec: dict[str, Any] = {}
    for key, value in obj["spec"].items():
        if obj["kind"] == "Service" and key == "ports":
            spec["f:ports"] = {
                "k:"
                + json.dumps({"port": port["port"], "protocol": port["protocol"]}, separators=(",", ":")): {
                    ".": {},
                    **{f"f:{k}": {} for k in port},
                }
                for port in value
            }
        else:
            spec[f"f:{key}"] = {}
    return {"f:metadata": fields, "f:spec": spec}


def as_served(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects as the API server returns them after our apply: our managedFields entry,
    server metadata, status and defaults added."""
    served = copy.deepcopy(objects)
    for obj in served:
        obj["metadata"]["managedFields"] = [
            {"manager": "modeldeploy", "operation": "Apply", "fieldsV1": applied_fields(obj)}
        ]
        obj["metadata"].update(uid="u-" + obj["metadata"]["name"], resourceVersion="42", generation=1)
        obj["metadata"].setdefault("annotations", {})["kubectl.kubernetes.io/last-applied-configuration"] = (
            "{}"
        )
        obj["status"] = {}
        spec = obj["spec"]
        if obj["kind"] == "Service":
            spec.update(clusterIP="10.96.0.17", clusterIPs=["10.96.0.17"], sessionAffinity="None")
        for rule in spec.get("rules", []):
            for ref in rule.get("backendRefs", []):
                ref.update(group="", kind="Service")
            for mirror in rule.get("filters", []):
                mirror.get("requestMirror", {}).get("backendRef", {}).update(group="", kind="Service")
    return served


def edit(objects: list[dict[str, Any]], kind: str, change: Any, name: str = NAME) -> list[dict[str, Any]]:
    """A copy of `objects` in which `change` was applied to the object `kind`/`name`: a hand edit."""
    edited = copy.deepcopy(objects)
    change(next(obj for obj in edited if obj["kind"] == kind and obj["metadata"]["name"] == name))
    return edited


def route_kind(provider: str) -> str:
    return {
        "gateway-api": "HTTPRoute",
        "istio": "VirtualService",
        "nginx": "Ingress",
        "smi": "TrafficSplit",
        "service": "Service",
    }[provider]


# --------------------------------------------------------------------------- the registry


def test_there_is_one_router_for_every_provider_of_the_api() -> None:
    assert set(ROUTERS) == set(PROVIDERS)
    for provider in PROVIDERS:
        assert router_for(provider).provider == provider


def test_an_unknown_provider_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'linkerd'.*gateway-api, istio"):
        router_for("linkerd")


def test_routing_refuses_a_weight_outside_0_to_100() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        Routing(stable_revision=STABLE, canary_revision=CANARY, canary_weight=101)


# --------------------------------------------------------------------------- every provider


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("weight", WEIGHTS)
def test_rendered_weight_reads_back_unchanged(provider: str, weight: int) -> None:
    router = router_for(provider)
    md = model(provider)
    live = as_served(router.desired(md, routing(weight)))

    state = router.routed(md, live, routing(weight))

    assert state.canary_weight == weight
    assert state.matches_desired


@pytest.mark.parametrize("provider", PROVIDERS)
def test_without_a_canary_everything_goes_to_stable(provider: str) -> None:
    router = router_for(provider)
    md = model(provider)
    objects = router.desired(md, routing(30, canary=None))

    assert f"{NAME}-canary" not in json.dumps(objects)
    assert router.routed(md, as_served(objects), routing(30, canary=None)).canary_weight == 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_object_is_owned_and_labelled(provider: str) -> None:
    md = model(provider)
    for obj in router_for(provider).desired(md, routing(10)):
        component = "service" if obj["kind"] == "Service" else "traffic"
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["ownerReferences"] == [common.owner_reference(md)]
        assert obj["metadata"]["labels"] == common.labels(md, component=component)


@pytest.mark.parametrize(
    ("provider", "selector"),
    [
        ("gateway-api", {common.LABEL_MODEL: NAME, common.LABEL_REVISION: STABLE}),
        ("istio", {common.LABEL_MODEL: NAME, common.LABEL_REVISION: STABLE}),
        ("nginx", {common.LABEL_MODEL: NAME, common.LABEL_REVISION: STABLE}),
        ("smi", {common.LABEL_MODEL: NAME}),
        ("service", {common.LABEL_MODEL: NAME}),
    ],
)
def test_the_service_clients_use_selects_stable_or_every_revision(
    provider: str, selector: dict[str, str]
) -> None:
    objects = router_for(provider).desired(model(provider), routing(10))
    service = next(obj for obj in objects if obj["kind"] == "Service")
    assert service["metadata"]["name"] == NAME
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["port"] == 8080


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_deleted_route_reads_back_as_unknown_and_not_matching(provider: str) -> None:
    router = router_for(provider)
    md = model(provider)
    live = [obj for obj in as_served(router.desired(md, routing(10))) if obj["kind"] != route_kind(provider)]

    state = router.routed(md, live, routing(10))

    assert state.canary_weight is None
    assert not state.matches_desired


def set_weights(backends: list[dict[str, Any]], is_stable: Any) -> None:
    for backend in backends:
        backend["weight"] = 60 if is_stable(backend) else 40


# provider -> (kind, name, edit) of a hand edit that routes 40% to the canary.
EDITS_TO_40_PERCENT = {
    "gateway-api": (
        "HTTPRoute",
        NAME,
        lambda route: set_weights(
            route["spec"]["rules"][0]["backendRefs"], lambda b: b["name"].endswith("stable")
        ),
    ),
    "istio": (
        "VirtualService",
        NAME,
        lambda vs: set_weights(
            vs["spec"]["http"][0]["route"], lambda r: r["destination"]["host"].endswith("stable")
        ),
    ),
    "nginx": (
        "Ingress",
        f"{NAME}-canary",
        lambda ingress: ingress["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/canary-weight": "40"}
        ),
    ),
    "smi": (
        "TrafficSplit",
        NAME,
        lambda split: set_weights(split["spec"]["backends"], lambda b: b["service"].endswith("stable")),
    ),
}


@pytest.mark.parametrize("provider", sorted(EDITS_TO_40_PERCENT))
def test_a_hand_edited_weight_is_read_back_and_flagged(provider: str) -> None:
    router = router_for(provider)
    md = model(provider)
    kind, name, change = EDITS_TO_40_PERCENT[provider]
    live = edit(as_served(router.desired(md, routing(10))), kind, change, name)

    state = router.routed(md, live, routing(10))

    assert state.canary_weight == 40
    assert not state.matches_desired


def test_a_hand_edited_service_selector_is_read_back_and_flagged() -> None:
    router = router_for("service")
    md = model("service")
    live = edit(
        as_served(router.desired(md, routing(10))),
        "Service",
        lambda service: service["spec"]["selector"].update({common.LABEL_REVISION: CANARY}),
    )

    state = router.routed(md, live, routing(10))

    assert state.canary_weight == 100
    assert not state.matches_desired


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_added_annotation_or_server_default_is_not_a_difference(provider: str) -> None:
    router = router_for(provider)
    md = model(provider)
    live = as_served(router.desired(md, routing(10)))
    for obj in live:
        obj["metadata"]["annotations"]["team"] = "ml-platform"

    assert router.routed(md, live, routing(10)).matches_desired


# --------------------------------------------------------------------------- capabilities


def past_the_crd(provider: str, **traffic: Any) -> ModelDeployment:
    """A model whose traffic settings were set without validation, as if written past the
    CRD's rules (an older CRD, a direct write to etcd)."""
    md = model(provider)
    md.spec.traffic = md.spec.traffic.model_copy(update=traffic)
    return md


CANARY_HEADER = HeaderRouting(name="x-canary", value="always")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_header_routing_is_refused_exactly_where_the_api_refuses_it(provider: str) -> None:
    router = router_for(provider)
    md = past_the_crd(provider, header_routing=CANARY_HEADER)
    if provider in HEADER_ROUTING_PROVIDERS:
        assert router.desired(md, routing(10)) != router.desired(model(provider), routing(10))
    else:
        with pytest.raises(ValueError, match=rf"spec\.traffic\.headerRouting .* {provider} "):
            router.desired(md, routing(10))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mirroring_is_refused_exactly_where_the_api_refuses_it(provider: str) -> None:
    router = router_for(provider)
    md = past_the_crd(provider, mirror=Mirror(percent=20))
    if provider in MIRROR_PROVIDERS:
        assert router.desired(md, routing(10)) != router.desired(model(provider), routing(10))
    else:
        with pytest.raises(ValueError, match=rf"spec\.traffic\.mirror .* {provider} "):
            router.desired(md, routing(10))


@pytest.mark.parametrize("provider", sorted(set(PROVIDERS) - set(MIRROR_PROVIDERS)))
def test_read_back_of_a_refused_spec_still_reads_the_weight_and_never_matches(provider: str) -> None:
    router = router_for(provider)
    live = as_served(router.desired(model(provider), routing(10)))

    state = router.routed(past_the_crd(provider, mirror=Mirror(percent=20)), live, routing(10))

    assert (state.canary_weight, state.matches_desired) == (10, False)


@pytest.mark.parametrize("provider", ["smi", "service"])
def test_a_timeout_is_refused_by_providers_without_a_router(provider: str) -> None:
    with pytest.raises(ValueError, match=r"spec\.traffic\.timeout .* " + provider):
        router_for(provider).desired(model(provider, timeout="30s"), routing(10))


@pytest.mark.parametrize("provider", MIRROR_PROVIDERS)
def test_mirror_percent_zero_means_no_mirror(provider: str) -> None:
    router = router_for(provider)
    assert router.desired(model(provider, mirror={"percent": 0}), routing(10)) == router.desired(
        model(provider), routing(10)
    )


# --------------------------------------------------------------------------- gateway-api


# Rendered as the API server would default it: HTTPRoute lists are compared whole.
SERVICE_REF = {"group": "", "kind": "Service"}


def httproute(md: ModelDeployment, route: Routing) -> dict[str, Any]:
    return next(
        obj
        for obj in router_for("gateway-api").desired(md, route)
        if obj["kind"] in ("HTTPRoute", "GRPCRoute")
    )


def test_httproute_attaches_to_the_gateway_with_hosts_path_and_weights() -> None:
    md = model(
        "gateway-api",
        gateway={"name": "ml-gateway", "namespace": "gateways", "sectionName": "https"},
        hosts=["sentiment.ml.example.com"],
        path="/v2",
        timeout="1.5s",
    )
    route = httproute(md, routing(10))

    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["name"] == NAME
    assert route["spec"]["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "ml-gateway",
            "namespace": "gateways",
            "sectionName": "https",
        }
    ]
    assert route["spec"]["hostnames"] == ["sentiment.ml.example.com"]
    assert route["spec"]["rules"] == [
        {
            "name": "split",
            "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
            "backendRefs": [
                {**SERVICE_REF, "name": f"{NAME}-stable", "port": 8080, "weight": 90},
                {**SERVICE_REF, "name": f"{NAME}-canary", "port": 8080, "weight": 10},
            ],
            "timeouts": {"request": "1s500ms"},
        }
    ]


def test_httproute_without_a_gateway_attaches_to_the_model_service_for_a_mesh() -> None:
    route = httproute(model("gateway-api"), routing(10))
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": NAME, "port": 8080}]
    assert "hostnames" not in route["spec"]


def test_httproute_sends_the_canary_header_to_the_canary_in_a_first_rule() -> None:
    md = model("gateway-api", headerRouting={"name": "x-canary", "value": "always"})
    route = httproute(md, routing(0))

    header_rule, split_rule = route["spec"]["rules"]
    assert header_rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "x-canary", "value": "always"}],
        }
    ]
    assert header_rule["backendRefs"] == [
        {**SERVICE_REF, "name": f"{NAME}-canary", "port": 8080, "weight": 1}
    ]
    assert [ref["weight"] for ref in split_rule["backendRefs"]] == [100, 0]
    assert router_for("gateway-api").routed(md, as_served([route]), routing(0)).canary_weight == 0


def test_httproute_mirrors_a_percentage_to_the_canary() -> None:
    route = httproute(model("gateway-api", mirror={"percent": 25}), routing(10))
    assert route["spec"]["rules"][0]["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {**SERVICE_REF, "name": f"{NAME}-canary", "port": 8080},
                "percent": 25,
            },
        }
    ]


def test_grpc_servers_get_a_grpcroute_without_path_match() -> None:
    md = model("gateway-api", protocol="grpc", headerRouting={"name": "x-canary", "value": "1"})
    route = httproute(md, routing(50))

    assert route["kind"] == "GRPCRoute"
    header_rule, split_rule = route["spec"]["rules"]
    assert header_rule["matches"] == [{"headers": [{"type": "Exact", "name": "x-canary", "value": "1"}]}]
    assert "matches" not in split_rule
    assert router_for("gateway-api").routed(md, as_served([route]), routing(50)).canary_weight == 50


def test_a_leftover_httproute_after_switching_to_grpc_is_a_difference() -> None:
    router = router_for("gateway-api")
    http_live = as_served(router.desired(model("gateway-api"), routing(10)))
    grpc_md = model("gateway-api", protocol="grpc")
    grpc_live = as_served(router.desired(grpc_md, routing(10)))

    state = router.routed(
        grpc_md, grpc_live + [obj for obj in http_live if obj["kind"] == "HTTPRoute"], routing(10)
    )

    assert state.canary_weight == 10
    assert not state.matches_desired


@pytest.mark.parametrize(("field", "value"), [("path", "/v2"), ("timeout", "10s")])
def test_grpcroute_refuses_what_it_cannot_express(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=rf"spec\.traffic\.{field} .*grpc"):
        router_for("gateway-api").desired(
            model("gateway-api", protocol="grpc", **{field: value}), routing(10)
        )


def test_backends_without_weight_count_one_each() -> None:
    md = model("gateway-api")
    live = edit(
        as_served(router_for("gateway-api").desired(md, routing(10))),
        "HTTPRoute",
        lambda route: [ref.pop("weight") for ref in route["spec"]["rules"][0]["backendRefs"]],
    )
    assert router_for("gateway-api").routed(md, live, routing(10)).canary_weight == 50


# --------------------------------------------------------------------------- istio


def virtualservice(md: ModelDeployment, route: Routing) -> dict[str, Any]:
    return next(obj for obj in router_for("istio").desired(md, route) if obj["kind"] == "VirtualService")


def test_virtualservice_routes_mesh_and_gateway_traffic_by_weight() -> None:
    md = model("istio", gateway={"name": "public"}, hosts=["sentiment.ml.example.com"], timeout="30s")
    vs = virtualservice(md, routing(10))

    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["spec"]["hosts"] == [NAME, "sentiment.ml.example.com"]
    assert vs["spec"]["gateways"] == [f"{NAMESPACE}/public", "mesh"]
    assert vs["spec"]["http"] == [
        {
            "name": "split",
            "match": [{"uri": {"prefix": "/"}}],
            "route": [
                {"destination": {"host": f"{NAME}-stable", "port": {"number": 8080}}, "weight": 90},
                {"destination": {"host": f"{NAME}-canary", "port": {"number": 8080}}, "weight": 10},
            ],
            "timeout": "30s",
        }
    ]


def test_virtualservice_without_a_gateway_binds_to_the_mesh_only() -> None:
    assert "gateways" not in virtualservice(model("istio"), routing(10))["spec"]


def test_virtualservice_header_route_comes_first_with_a_lower_case_header() -> None:
    md = model("istio", headerRouting={"name": "X-Canary", "value": "always"})
    header_route, split_route = virtualservice(md, routing(10))["spec"]["http"]

    assert header_route["match"] == [{"uri": {"prefix": "/"}, "headers": {"x-canary": {"exact": "always"}}}]
    assert header_route["route"] == [
        {"destination": {"host": f"{NAME}-canary", "port": {"number": 8080}}, "weight": 100}
    ]
    assert split_route["name"] == "split"


def test_virtualservice_mirrors_a_percentage_to_the_canary() -> None:
    split = virtualservice(model("istio", mirror={"percent": 5}), routing(10))["spec"]["http"][0]
    assert split["mirror"] == {"host": f"{NAME}-canary", "port": {"number": 8080}}
    assert split["mirrorPercentage"] == {"value": 5}


def test_istio_reads_fully_qualified_hosts_and_a_lone_destination() -> None:
    md = model("istio")
    fqdn = f"{NAME}-canary.{NAMESPACE}.svc.cluster.local"
    live = edit(
        as_served(router_for("istio").desired(md, routing(10))),
        "VirtualService",
        lambda vs: vs["spec"]["http"][0].update(route=[{"destination": {"host": fqdn}}]),
    )
    assert router_for("istio").routed(md, live, routing(10)).canary_weight == 100


# --------------------------------------------------------------------------- nginx


def ingresses(md: ModelDeployment, route: Routing) -> dict[str, dict[str, Any]]:
    return {
        obj["metadata"]["name"]: obj
        for obj in router_for("nginx").desired(md, route)
        if obj["kind"] == "Ingress"
    }


def test_nginx_renders_a_stable_ingress_and_a_canary_ingress() -> None:
    md = model("nginx", ingressClassName="nginx", hosts=["a.example.com", "b.example.com"], path="/predict")
    by_name = ingresses(md, routing(10))

    stable, canary = by_name[NAME], by_name[f"{NAME}-canary"]
    assert stable["spec"]["ingressClassName"] == "nginx"
    assert [rule["host"] for rule in stable["spec"]["rules"]] == ["a.example.com", "b.example.com"]
    assert stable["spec"]["rules"][0]["http"]["paths"] == [
        {
            "path": "/predict",
            "pathType": "Prefix",
            "backend": {"service": {"name": f"{NAME}-stable", "port": {"number": 8080}}},
        }
    ]
    assert "annotations" not in stable["metadata"]
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "10",
    }
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == f"{NAME}-canary"


def test_nginx_without_hosts_answers_on_any_host() -> None:
    assert "host" not in ingresses(model("nginx"), routing(10))[NAME]["spec"]["rules"][0]


def test_nginx_canary_by_header_timeouts_and_grpc() -> None:
    md = model(
        "nginx", protocol="grpc", headerRouting={"name": "x-canary", "value": "always"}, timeout="1.5s"
    )
    by_name = ingresses(md, routing(0))

    for ingress in by_name.values():
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
        assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "2"
        assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "2"
    canary = by_name[f"{NAME}-canary"]["metadata"]["annotations"]
    assert canary["nginx.ingress.kubernetes.io/canary-by-header"] == "x-canary"
    assert canary["nginx.ingress.kubernetes.io/canary-by-header-value"] == "always"


def test_a_canary_ingress_left_after_promotion_is_a_difference() -> None:
    md = model("nginx")
    during = as_served(router_for("nginx").desired(md, routing(100)))
    promoted = Routing(stable_revision=CANARY, canary_revision=None, canary_weight=0)

    state = router_for("nginx").routed(md, during, promoted)

    assert state.canary_weight == 100
    assert not state.matches_desired


@pytest.mark.parametrize(
    ("annotations", "weight"),
    [
        ({"nginx.ingress.kubernetes.io/canary-weight-total": "1000"}, 1),
        ({"nginx.ingress.kubernetes.io/canary": "false"}, None),
        ({"nginx.ingress.kubernetes.io/canary-weight": "ten"}, None),
    ],
)
def test_nginx_reads_the_canary_annotations_as_ingress_nginx_does(
    annotations: dict[str, str], weight: int | None
) -> None:
    md = model("nginx")
    live = edit(
        as_served(router_for("nginx").desired(md, routing(10))),
        "Ingress",
        lambda ingress: ingress["metadata"]["annotations"].update(annotations),
        name=f"{NAME}-canary",
    )
    assert router_for("nginx").routed(md, live, routing(10)).canary_weight == weight


# --------------------------------------------------------------------------- smi and service


def test_trafficsplit_splits_the_root_service_between_the_role_services() -> None:
    objects = router_for("smi").desired(model("smi"), routing(10))
    split = next(obj for obj in objects if obj["kind"] == "TrafficSplit")

    assert split["apiVersion"] == "split.smi-spec.io/v1alpha4"
    assert split["spec"] == {
        "service": NAME,
        "backends": [
            {"service": f"{NAME}-stable", "weight": 90},
            {"service": f"{NAME}-canary", "weight": 10},
        ],
    }


@pytest.mark.parametrize(
    ("canary_ready", "stable_ready", "weight"), [(1, 2, 33), (1, 1, 50), (1, 0, 100), (0, 0, 0), (1, 199, 1)]
)
def test_the_service_provider_routes_by_ready_replica_ratio(
    canary_ready: int, stable_ready: int, weight: int
) -> None:
    md = model("service")
    decided = Routing(
        STABLE,
        CANARY,
        canary_weight=50,
        canary_ready_replicas=canary_ready,
        stable_ready_replicas=stable_ready,
    )
    live = as_served(router_for("service").desired(md, decided))

    assert router_for("service").routed(md, live, decided).canary_weight == weight


@pytest.mark.parametrize(
    ("weight", "canary", "pinned"),
    [(0, CANARY, STABLE), (100, CANARY, CANARY), (40, None, STABLE), (40, CANARY, None)],
)
def test_the_service_provider_pins_its_selector_at_the_ends_of_the_range(
    weight: int, canary: str | None, pinned: str | None
) -> None:
    """Weight 0 and 100 are exact: promotion waits for a read-back of 100%, which a replica
    ratio never reaches while the stable revision still has pods."""
    md = model("service")
    decided = Routing(STABLE, canary, canary_weight=weight, canary_ready_replicas=1, stable_ready_replicas=1)
    [service] = router_for("service").desired(md, decided)

    assert service["spec"]["selector"].get(common.LABEL_REVISION) == pinned
    expected = {STABLE: 0, CANARY: 100, None: 50}[pinned] if canary else 0
    assert router_for("service").routed(md, as_served([service]), decided).canary_weight == expected


# --------------------------------------------------------------------------- shared helpers


@pytest.mark.parametrize(
    ("duration", "normalized", "seconds"),
    [
        ("30s", "30s", 30),
        ("1.5s", "1s500ms", 2),
        ("250ms", "250ms", 1),
        ("1h30m", "1h30m", 5400),
        ("90s", "1m30s", 90),
        ("0s", "0s", 1),
    ],
)
def test_durations_are_rendered_in_whole_parts(duration: str, normalized: str, seconds: int) -> None:
    assert normalized_duration(duration) == normalized
    assert whole_seconds(duration) == seconds


@pytest.mark.parametrize(
    ("part", "total", "percent"), [(1, 8, 13), (1, 200, 1), (1, 201, 0), (0, 0, 0), (5, 5, 100)]
)
def test_percentages_round_halves_up(part: int, total: int, percent: int) -> None:
    assert percent_of(part, total) == percent


def test_an_added_header_condition_in_an_istio_match_is_a_difference() -> None:
    md = model("istio", headerRouting={"name": "x-canary", "value": "always"})
    live = edit(
        as_served(router_for("istio").desired(md, routing(10))),
        "VirtualService",
        lambda vs: vs["spec"]["http"][0]["match"][0]["headers"].update({"x-user": {"exact": "alice"}}),
    )
    assert not router_for("istio").routed(md, live, routing(10)).matches_desired


# --------------------------------------------------------------------------- removed features

# provider -> traffic settings it renders and the user can remove again.
REMOVABLE = {
    "gateway-api": {
        "mirror": {"percent": 20},
        "timeout": "1.5s",
        "headerRouting": {"name": "x-c", "value": "1"},
    },
    "istio": {"mirror": {"percent": 20}, "timeout": "1.5s", "headerRouting": {"name": "x-c", "value": "1"}},
    "nginx": {"timeout": "30s", "headerRouting": {"name": "x-c", "value": "1"}},
}


@pytest.mark.parametrize(
    ("provider", "removed"), [(provider, field) for provider in REMOVABLE for field in REMOVABLE[provider]]
)
def test_a_feature_removed_from_the_spec_is_a_difference_until_the_route_loses_it(
    provider: str, removed: str
) -> None:
    """Issue 15: removing spec.traffic.mirror left the RequestMirror filter on the HTTPRoute
    (and Traefik answers 500 on such a rule) until some other change rewrote the route."""
    router = router_for(provider)
    before = model(provider, **REMOVABLE[provider])
    after = model(provider, **{k: v for k, v in REMOVABLE[provider].items() if k != removed})
    still_there = as_served(router.desired(before, routing(10)))
    assert router.desired(before, routing(10)) != router.desired(after, routing(10))

    assert not router.routed(after, still_there, routing(10)).matches_desired
    assert router.routed(after, as_served(router.desired(after, routing(10))), routing(10)).matches_desired
