from modeldeploy.api.models import ModelDeployment
from modeldeploy.render.services import render_role_services

MD = ModelDeployment.model_validate(
    {
        "metadata": {"name": "sentiment", "namespace": "ml", "uid": "u-1"},
        "spec": {
            "model": {"uri": "s3://models/sentiment/v7/"},
            "runtime": {"image": "server:1", "port": 9000},
        },
    }
)


def selectors(services: list[dict]) -> dict[str, dict]:
    return {svc["metadata"]["name"]: svc["spec"]["selector"] for svc in services}


def test_each_role_service_selects_its_revision() -> None:
    services = render_role_services(MD, stable="aaa", canary="bbb")
    assert selectors(services) == {
        "sentiment-stable": {"modeldeploy.io/model": "sentiment", "modeldeploy.io/revision": "aaa"},
        "sentiment-canary": {"modeldeploy.io/model": "sentiment", "modeldeploy.io/revision": "bbb"},
    }
    assert {svc["spec"]["ports"][0]["port"] for svc in services} == {9000}
    assert all(svc["metadata"]["ownerReferences"][0]["uid"] == "u-1" for svc in services)


def test_without_a_canary_the_canary_service_points_at_stable() -> None:
    assert selectors(render_role_services(MD, stable="aaa", canary=None))["sentiment-canary"] == {
        "modeldeploy.io/model": "sentiment",
        "modeldeploy.io/revision": "aaa",
    }


def test_nothing_before_the_first_revision_exists() -> None:
    assert render_role_services(MD, stable=None, canary=None) == []
