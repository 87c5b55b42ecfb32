from modeldeploy.controller.diff import needs_apply

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


def live_copy(**changes: object) -> dict:
    import copy

    live = copy.deepcopy(DESIRED)
    live["metadata"].update(resourceVersion="7", uid="u", managedFields=[{"manager": "modeldeploy"}])
    live["spec"]["replicas"] = 3  # owned by an autoscaler
    live["status"] = {"readyReplicas": 3}
    container = live["spec"]["template"]["spec"]["containers"][0]
    container.update(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log")
    container["resources"]["requests"]["cpu"] = "1"  # the server normalises 1000m
    for key, value in changes.items():
        container[key] = value
    return live


def test_server_defaults_other_owners_and_normalised_quantities_need_no_write() -> None:
    assert not needs_apply(DESIRED, live_copy())


def test_a_changed_field_needs_a_write() -> None:
    assert needs_apply(DESIRED, live_copy(image="img:2"))


def test_a_removed_field_needs_a_write() -> None:
    live = live_copy()
    del live["metadata"]["labels"]["a"]
    assert needs_apply(DESIRED, live)


def test_an_extra_list_item_needs_a_write() -> None:
    live = live_copy()
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert needs_apply(DESIRED, live)


def test_quantities_compare_by_value_but_booleans_and_words_do_not() -> None:
    assert not needs_apply({"a": "0.5"}, {"a": "500m"})
    assert not needs_apply({"port": 8080}, {"port": "8080"})
    assert needs_apply({"a": True}, {"a": 1})
    assert needs_apply({"a": "serving"}, {"a": "http"})
    assert needs_apply({"a": None}, {"a": "x"})


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
