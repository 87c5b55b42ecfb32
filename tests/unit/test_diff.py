from modeldeploy.controller.diff import edited_by_others, needs_apply

MANAGER = "modeldeploy"

DESIRED = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "m", "labels": {"a": "1"}},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "img:1",
                        "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"}},
                    }
                ]
            }
        }
    },
}


OURS = {
    "f:metadata": {"f:labels": {"f:a": {}}},
    "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"server"}': {".": {}, "f:image": {}}}}}},
}


def live_copy(**changes: object) -> dict:
    import copy

    live = copy.deepcopy(DESIRED)
    live["metadata"].update(
        resourceVersion="7",
        uid="u",
        managedFields=[
            {"manager": "modeldeploy", "operation": "Apply", "fieldsV1": OURS},
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            },
        ],
    )
    live["spec"]["replicas"] = 3  # owned by an autoscaler
    live["status"] = {"readyReplicas": 3}
    container = live["spec"]["template"]["spec"]["containers"][0]
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    container["resources"]["requests"]["cpu"] = "1"  # the server normalises 1000m
    for key, value in changes.items():
        container[key] = value
    return live


def test_server_defaults_other_owners_and_normalised_quantities_need_no_write() -> None:
    assert not needs_apply(DESIRED, live_copy(), MANAGER)


def test_a_changed_field_needs_a_write() -> None:
    assert needs_apply(DESIRED, live_copy(image="img:2"), MANAGER)


def test_a_removed_field_needs_a_write() -> None:
    live = live_copy()
    del live["metadata"]["labels"]["a"]
    assert needs_apply(DESIRED, live, MANAGER)


def test_an_extra_list_item_needs_a_write() -> None:
    live = live_copy()
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert needs_apply(DESIRED, live, MANAGER)


def test_quantities_compare_by_value_but_booleans_and_words_do_not() -> None:
    assert not needs_apply({"a": "0.5"}, {"a": "500m"}, MANAGER)
    assert not needs_apply({"port": 8080}, {"port": "8080"}, MANAGER)
    assert needs_apply({"a": True}, {"a": 1}, MANAGER)
    assert needs_apply({"a": "serving"}, {"a": "http"}, MANAGER)
    assert needs_apply({"a": None}, {"a": "x"}, MANAGER)


def test_parse_quantity() -> None:
    from decimal import Decimal

    import pytest

    from modeldeploy.quantity import parse_quantity

    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity("8Gi") == 8 * 2**30
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("2E") == 2 * 10**18
    assert parse_quantity(4) == 4
    for bad in ("lots", "1.2.3", "5Q", True):
        with pytest.raises(ValueError):
            parse_quantity(bad)


def test_a_field_we_applied_before_and_no_longer_want_needs_a_write() -> None:
    live = live_copy()
    live["metadata"]["managedFields"][0]["fieldsV1"] = {
        **OURS,
        "f:spec": {**OURS["f:spec"], "f:replicas": {}},  # we set replicas before an autoscaler took over
    }
    assert needs_apply(DESIRED, live, MANAGER)


def test_fields_owned_by_another_manager_are_not_ours_to_remove() -> None:
    live = live_copy()
    live["metadata"]["labels"]["b"] = "someone else's"
    assert not needs_apply(DESIRED, live, MANAGER)


def test_a_map_owned_whole_must_match_exactly() -> None:
    desired = {"spec": {"selector": {"model": "m"}}}
    live = {
        "spec": {"selector": {"model": "m", "revision": "r1"}},
        "metadata": {
            "managedFields": [
                {"manager": MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:selector": {}}}}
            ]
        },
    }
    assert needs_apply(desired, live, MANAGER)


def test_a_hand_edit_is_told_apart_from_a_change_of_our_own() -> None:
    ours_only = live_copy(image="img:0")
    assert not edited_by_others(DESIRED, ours_only, MANAGER)  # the HPA's replicas are not ours to apply

    edited = live_copy(image="evil:1")
    edited["metadata"]["managedFields"].append(
        {
            "manager": "kubectl-set",
            "operation": "Update",
            "fieldsV1": {
                "f:spec": {
                    "f:template": {"f:spec": {"f:containers": {'k:{"name":"server"}': {"f:image": {}}}}}
                }
            },
        }
    )
    assert edited_by_others(DESIRED, edited, MANAGER)

    status_only = live_copy()
    status_only["metadata"]["managedFields"].append(
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "subresource": "status",
            "fieldsV1": {"f:status": {}},
        }
    )
    assert not edited_by_others(DESIRED, status_only, MANAGER)


# --------------------------------------------------------------------------- atomic lists


def applied_route(kind: str, spec: dict, spec_fields: dict) -> dict:
    """A route as the API server returns it after our apply: our Apply entry owns each list of
    spec whole (`f:rules: {}`), as Gateway API and Istio declare them atomic."""
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": "m",
            "namespace": "ml",
            "labels": {"app.kubernetes.io/managed-by": "modeldeploy"},
            "resourceVersion": "7",
            "managedFields": [
                {
                    "manager": MANAGER,
                    "operation": "Apply",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
                        "f:spec": spec_fields,
                    },
                },
                {
                    "manager": "traefik",
                    "operation": "Update",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:parents": {}}},
                },
            ],
        },
        "spec": spec,
        "status": {"parents": [{"controllerName": "traefik.io/gateway-controller"}]},
    }


def backend(name: str, weight: int, defaults: bool) -> dict:
    # What the API server adds to every backendRef (Gateway API defaults).
    return {
        "name": name,
        "port": 8080,
        "weight": weight,
        **({"group": "", "kind": "Service"} if defaults else {}),
    }


def httproute_spec(mirror: bool, timeout: bool, defaults: bool) -> dict:
    rule: dict = {
        "name": "split",
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [backend("m-stable", 90, defaults), backend("m-canary", 10, defaults)],
    }
    if mirror:
        mirror_ref = {
            "name": "m-canary",
            "port": 8080,
            **({"group": "", "kind": "Service"} if defaults else {}),
        }
        rule["filters"] = [
            {"type": "RequestMirror", "requestMirror": {"backendRef": mirror_ref, "percent": 20}}
        ]
    if timeout:
        rule["timeouts"] = {"request": "1s500ms"}
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "ml-gateway"}
    return {"parentRefs": [parent], "hostnames": ["m.example.com"], "rules": [rule]}


HTTPROUTE_FIELDS = {"f:parentRefs": {}, "f:hostnames": {}, "f:rules": {}}


def test_a_removed_mirror_filter_or_timeout_on_an_httproute_needs_a_write() -> None:
    desired = {
        **applied_route("HTTPRoute", httproute_spec(False, False, defaults=True), {}),
        "metadata": {
            "name": "m",
            "namespace": "ml",
            "labels": {"app.kubernetes.io/managed-by": "modeldeploy"},
        },
    }
    desired.pop("status")
    for mirror, timeout in ((True, False), (False, True), (True, True)):
        still_there = applied_route("HTTPRoute", httproute_spec(mirror, timeout, True), HTTPROUTE_FIELDS)
        assert needs_apply(desired, still_there, MANAGER), (mirror, timeout)
    gone = applied_route("HTTPRoute", httproute_spec(False, False, True), HTTPROUTE_FIELDS)
    assert not needs_apply(desired, gone, MANAGER)


def virtualservice_spec(mirror: bool, timeout: bool) -> dict:
    def destination(host: str, weight: int) -> dict:
        return {"destination": {"host": host, "port": {"number": 8080}}, "weight": weight}

    route: dict = {
        "name": "split",
        "match": [{"uri": {"prefix": "/"}}],
        "route": [destination("m-stable", 90), destination("m-canary", 10)],
    }
    if mirror:
        route["mirror"] = {"host": "m-canary", "port": {"number": 8080}}
        route["mirrorPercentage"] = {"value": 20}
    if timeout:
        route["timeout"] = "1s500ms"
    return {"hosts": ["m", "m.example.com"], "gateways": ["ml/ml-gateway", "mesh"], "http": [route]}


def test_a_removed_mirror_or_timeout_on_a_virtualservice_needs_a_write() -> None:
    fields = {"f:hosts": {}, "f:gateways": {}, "f:http": {}}
    desired = {
        "apiVersion": "v1",
        "kind": "VirtualService",
        "metadata": {
            "name": "m",
            "namespace": "ml",
            "labels": {"app.kubernetes.io/managed-by": "modeldeploy"},
        },
        "spec": virtualservice_spec(False, False),
    }
    for mirror, timeout in ((True, False), (False, True), (True, True)):
        still_there = applied_route("VirtualService", virtualservice_spec(mirror, timeout), fields)
        assert needs_apply(desired, still_there, MANAGER), (mirror, timeout)
    assert not needs_apply(
        desired, applied_route("VirtualService", virtualservice_spec(False, False), fields), MANAGER
    )


def test_a_field_we_no_longer_set_inside_a_keyed_list_item_needs_a_write() -> None:
    import copy

    live = live_copy(args=["--verbose"])
    ours = copy.deepcopy(OURS)
    ours["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"server"}']["f:args"] = {}
    live["metadata"]["managedFields"][0]["fieldsV1"] = ours
    assert needs_apply(DESIRED, live, MANAGER)
    # The same field in the live object without our ownership (a webhook set it) is not ours.
    assert not needs_apply(DESIRED, live_copy(args=["--verbose"]), MANAGER)
