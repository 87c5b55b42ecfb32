"""The Deployment of one revision: naming, replicas, GPUs, scheduling, probes and labels."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from modeldeploy.api.models import ModelDeployment
from modeldeploy.render.common import LABEL_MODEL, LABEL_NAME, LABEL_REVISION, selector_labels
from modeldeploy.render.revision import REVISION_SPEC_ANNOTATION, RevisionPlan, RevisionSpec, Role
from modeldeploy.render.workload import GPU_TOLERATION, LABEL_ROLE, deployment_name, render_deployment
from tests.unit.test_api_strategies import dns_names, manifests, verdict

INITIALIZER = "ghcr.io/example/modeldeploy:0.1"


def model_deployment(runtime: dict[str, Any] | None = None, **spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": "sentiment",
                "namespace": "ml",
                "uid": "0f7c6a52-1d1e-4f7e-9a57-5d0c3f1e2b7a",
            },
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", **(runtime or {})},
                **spec,
            },
        }
    )


def plan_of(md: ModelDeployment, role: Role = "stable", replicas: int | None = 1) -> RevisionPlan:
    spec = RevisionSpec.of(md.spec)
    return RevisionPlan(revision=spec.revision, role=role, spec=spec, replicas=replicas)


def render(md: ModelDeployment, **plan: Any) -> dict[str, Any]:
    return render_deployment(md, plan_of(md, **plan), INITIALIZER)


def pod_of(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def server_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (server,) = pod_of(deployment)["containers"]
    return server


# --------------------------------------------------------------------------- naming and strategy


def test_a_canary_revision_gets_its_own_deployment_selecting_its_revision() -> None:
    md = model_deployment()
    revision = plan_of(md).revision

    deployment = render(md)

    assert deployment_name(md, revision) == f"sentiment-{revision}"
    assert deployment["metadata"]["name"] == f"sentiment-{revision}"
    assert deployment["spec"]["selector"] == {"matchLabels": selector_labels(md, revision)}
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}


def test_rolling_updates_one_deployment_whose_selector_survives_new_revisions() -> None:
    old = model_deployment(rollout={"strategy": "rolling"})
    new = model_deployment({"image": "ghcr.io/example/onnx-server:1.5"}, rollout={"strategy": "rolling"})

    before, after = render(old), render(new)

    assert before["metadata"]["name"] == after["metadata"]["name"] == "sentiment"
    assert before["spec"]["selector"] == after["spec"]["selector"] == {"matchLabels": selector_labels(old)}
    assert after["spec"]["template"]["metadata"]["labels"]["modeldeploy.io/revision"] == plan_of(new).revision
    assert after["spec"]["strategy"]["type"] == "RollingUpdate"


def test_recreate_updates_one_deployment_with_the_recreate_strategy() -> None:
    md = model_deployment(rollout={"strategy": "recreate"})

    deployment = render(md)

    assert deployment["metadata"]["name"] == deployment_name(md, "any") == "sentiment"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_role_labels_the_deployment_but_never_the_pods() -> None:
    deployment = render(model_deployment(), role="canary")

    assert deployment["metadata"]["labels"][LABEL_ROLE] == "canary"
    assert LABEL_ROLE not in deployment["spec"]["template"]["metadata"]["labels"]


def test_the_revision_spec_annotation_renders_the_same_deployment_again() -> None:
    md = model_deployment({"resources": {"gpu": 2}, "gpu": {"product": "NVIDIA-L4"}})
    plan = plan_of(md)
    deployment = render_deployment(md, plan, INITIALIZER)
    stored = RevisionSpec.from_annotation(deployment["metadata"]["annotations"][REVISION_SPEC_ANNOTATION])

    rerendered = render_deployment(
        model_deployment(), RevisionPlan(plan.revision, "stable", stored, 1), INITIALIZER
    )

    assert rerendered == deployment


def test_progress_deadline_allows_for_the_startup_timeout() -> None:
    deployment = render(model_deployment({"startupTimeoutSeconds": 1800}))

    assert deployment["spec"]["progressDeadlineSeconds"] > 1800
    assert deployment["spec"]["revisionHistoryLimit"] == 2


# --------------------------------------------------------------------------- replicas


def test_fixed_replicas_are_rendered() -> None:
    assert render(model_deployment(), replicas=3)["spec"]["replicas"] == 3


def test_replicas_owned_by_an_autoscaler_are_left_out() -> None:
    assert "replicas" not in render(model_deployment(), replicas=None)["spec"]


# --------------------------------------------------------------------------- GPUs and scheduling


def test_gpus_are_requested_and_limited_alike() -> None:
    server = server_of(render(model_deployment({"resources": {"cpu": "4", "memory": "16Gi", "gpu": 2}})))

    assert server["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
    }


def test_a_mig_profile_requests_slices_instead_of_whole_gpus() -> None:
    runtime = {"resources": {"gpu": 3}, "gpu": {"migProfile": "1g.10gb"}}

    resources = server_of(render(model_deployment(runtime)))["resources"]

    assert resources == {
        "requests": {"nvidia.com/mig-1g.10gb": "3"},
        "limits": {"nvidia.com/mig-1g.10gb": "3"},
    }


def test_a_cpu_only_server_has_no_gpu_resource_toleration_or_shm() -> None:
    pod = pod_of(render(model_deployment({"resources": {"cpu": "1"}})))

    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "1"}}
    assert "tolerations" not in pod
    assert "nodeSelector" not in pod
    assert all(volume["name"] != "dshm" for volume in pod["volumes"])


def test_a_gpu_product_joins_the_node_selector_and_wins_over_a_contradicting_one() -> None:
    runtime = {
        "resources": {"gpu": 1},
        "gpu": {"product": "NVIDIA-L4"},
        "nodeSelector": {"topology.kubernetes.io/zone": "b", "nvidia.com/gpu.product": "NVIDIA-T4"},
    }

    pod = pod_of(render(model_deployment(runtime)))

    assert pod["nodeSelector"] == {"topology.kubernetes.io/zone": "b", "nvidia.com/gpu.product": "NVIDIA-L4"}


def test_gpus_tolerate_the_gpu_taint_before_the_users_tolerations_without_duplicates() -> None:
    runtime = {
        "resources": {"gpu": 1},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {
                "key": "spot",
                "operator": "Equal",
                "value": "true",
                "effect": "NoExecute",
                "tolerationSeconds": 30,
            },
        ],
    }

    pod = pod_of(render(model_deployment(runtime)))

    assert pod["tolerations"] == [
        GPU_TOLERATION,
        {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30},
    ]


def test_user_tolerations_alone_without_gpus() -> None:
    pod = pod_of(render(model_deployment({"tolerations": [{"key": "dedicated", "operator": "Exists"}]})))

    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]


def test_gpu_servers_get_an_unsized_memory_backed_shm() -> None:
    pod = pod_of(render(model_deployment({"resources": {"gpu": 1}})))

    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in pod["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]


def test_a_shm_size_gives_any_server_a_sized_shm() -> None:
    pod = pod_of(render(model_deployment({"shmSize": "2Gi"})))

    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in pod["volumes"]


# --------------------------------------------------------------------------- the server container


def test_the_server_container() -> None:
    runtime = {
        "command": ["python", "-m", "server"],
        "args": ["--model-dir=$(MODEL_DIR)"],
        "port": 9000,
        "envFrom": [{"configMapRef": {"name": "server-settings"}}],
        "serviceAccountName": "sentiment",
    }

    pod = pod_of(render(model_deployment(runtime)))
    server = pod["containers"][0]

    assert server["name"] == "server"
    assert server["image"] == "ghcr.io/example/onnx-server:1.4"
    assert server["command"] == ["python", "-m", "server"]
    assert server["args"] == ["--model-dir=$(MODEL_DIR)"]
    assert server["envFrom"] == [{"configMapRef": {"name": "server-settings"}}]
    assert server["ports"] == [{"name": "serving", "containerPort": 9000, "protocol": "TCP"}]
    assert server["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": "model", "mountPath": "/mnt/models", "readOnly": True} in server["volumeMounts"]
    assert pod["serviceAccountName"] == "sentiment"
    assert "automountServiceAccountToken" not in pod
    assert [init["name"] for init in pod["initContainers"]] == ["fetch-model"]


def test_without_a_service_account_no_token_is_mounted() -> None:
    pod = pod_of(render(model_deployment()))

    assert "serviceAccountName" not in pod
    assert pod["automountServiceAccountToken"] is False


def test_model_variables_come_first_and_cannot_be_overridden() -> None:
    md = model_deployment(
        {
            "env": [
                {"name": "MODEL_DIR", "value": "/elsewhere"},
                {"name": "WEIGHTS", "value": "$(MODEL_DIR)/weights"},
                {"name": "MODEL_FORMAT", "value": "pytorch"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "token"}}},
            ]
        },
        model={"uri": "s3://models/m", "format": "onnx"},
    )

    assert server_of(render(md))["env"] == [
        {"name": "MODEL_DIR", "value": "/mnt/models"},
        {"name": "MODEL_FORMAT", "value": "onnx"},
        {"name": "WEIGHTS", "value": "$(MODEL_DIR)/weights"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "token"}}},
    ]


def test_http_probes_use_the_named_port_and_startup_allows_the_startup_timeout() -> None:
    server = server_of(
        render(model_deployment({"readinessPath": "/v2/health/ready", "startupTimeoutSeconds": 905}))
    )

    assert server["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "serving"}
    assert server["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "serving"}
    startup = server["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 905
    # Asked often until first ready, so a fast server is not held back by the probe period.
    assert startup["periodSeconds"] <= 2 < server["readinessProbe"]["periodSeconds"]
    assert "livenessProbe" not in server


def test_a_liveness_path_adds_a_liveness_probe() -> None:
    server = server_of(render(model_deployment({"livenessPath": "/v2/health/live"})))

    assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "serving"}


def test_grpc_servers_are_probed_with_the_grpc_health_service() -> None:
    server = server_of(render(model_deployment({"protocol": "grpc", "port": 8081, "livenessPath": "/"})))

    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        assert server[probe]["grpc"] == {"port": 8081}
        assert "httpGet" not in server[probe]


def test_pod_labels_and_annotations_join_ours() -> None:
    md = model_deployment({"podLabels": {"team": "nlp"}, "podAnnotations": {"prometheus.io/scrape": "true"}})

    template = render(md)["spec"]["template"]["metadata"]

    assert template["labels"]["team"] == "nlp"
    assert template["labels"]["modeldeploy.io/model"] == "sentiment"
    assert template["labels"]["modeldeploy.io/revision"] == plan_of(md).revision
    assert template["annotations"]["prometheus.io/scrape"] == "true"


def test_server_pods_meet_pod_security_restricted_except_run_as_non_root_by_default() -> None:
    pod = pod_of(render(model_deployment()))

    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert server_of(render(model_deployment()))["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_security_contexts_from_the_spec_merge_over_the_defaults() -> None:
    md = model_deployment(
        {
            "podSecurityContext": {"runAsNonRoot": True, "fsGroup": 2000},
            "securityContext": {"runAsUser": 1000, "capabilities": {"add": ["NET_BIND_SERVICE"]}},
        }
    )

    deployment = render(md)

    assert pod_of(deployment)["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
        "fsGroup": 2000,
    }
    assert server_of(deployment)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsUser": 1000,
    }


def test_the_deployment_progress_deadline_is_the_models() -> None:
    assert render(model_deployment())["spec"]["progressDeadlineSeconds"] == 600 + 600
    md = model_deployment(rollout={"progressDeadlineSeconds": 120})
    assert render(md)["spec"]["progressDeadlineSeconds"] == 120


def test_an_oci_modelcar_shares_the_process_namespace_and_starts_before_the_server() -> None:
    md = model_deployment(model={"uri": "oci://registry.example.com/m:v1"})

    pod = pod_of(render_deployment(md, plan_of(md), INITIALIZER, oci_mode="modelcar"))

    assert pod["shareProcessNamespace"] is True
    assert [(init["name"], init["restartPolicy"]) for init in pod["initContainers"]] == [
        ("modelcar", "Always")
    ]


# --------------------------------------------------------------------------- properties over valid specs

# Pod labels and server variables the operator sets itself, which the API lets a user set too.
our_labels = st.sampled_from([LABEL_MODEL, LABEL_REVISION, LABEL_NAME])
our_variables = st.sampled_from(["MODEL_DIR", "MODEL_FORMAT"])


@st.composite
def model_deployments(draw: st.DrawFn) -> ModelDeployment:
    """The drawn manifests the API accepts, some given our labels and variables."""
    manifest = draw(manifests())
    drawn = manifest["spec"]["runtime"]
    runtime = {
        **drawn,
        "podLabels": {**drawn.get("podLabels", {}), **draw(st.dictionaries(our_labels, dns_names))},
        "env": [
            *drawn.get("env", []),
            *({"name": name} for name in draw(st.lists(our_variables, unique=True))),
        ],
    }
    md = verdict(
        {
            **manifest,
            "metadata": {**manifest["metadata"], "namespace": "ml", "uid": "u"},
            "spec": {**manifest["spec"], "runtime": runtime},
        }
    )
    assume(md is not None)
    assert md is not None
    return md


@given(
    md=model_deployments(),
    role=st.sampled_from(["stable", "canary", "retiring"]),
    replicas=st.none() | st.integers(0, 10),
    oci_mode=st.sampled_from(["image-volume", "modelcar"]),
)
def test_every_valid_spec_renders_deterministically_with_pods_its_selector_matches(
    md: ModelDeployment, role: Role, replicas: int | None, oci_mode: Any
) -> None:
    plan = plan_of(md, role, replicas)

    deployment = render_deployment(md, plan, INITIALIZER, oci_mode)

    assert render_deployment(md, plan, INITIALIZER, oci_mode) == deployment
    assert json.dumps(deployment) == json.dumps(render_deployment(md, plan, INITIALIZER, oci_mode))
    template_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
    assert template_labels.items() >= selector_labels(md, plan.revision).items()
    pod = pod_of(deployment)
    names = [variable["name"] for variable in pod["containers"][0]["env"]]
    assert len(names) == len(set(names))
    mounted = {mount["name"] for container in pod["containers"] for mount in container["volumeMounts"]}
    assert mounted <= {volume["name"] for volume in pod["volumes"]}
