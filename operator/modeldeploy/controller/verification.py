"""Glue of the verification policy: the namespace's labels, from the watch's view or one read."""

from __future__ import annotations

from modeldeploy.api.models import ModelDeployment
from modeldeploy.api.verification_policy import VerificationPolicy
from modeldeploy.controller.cluster_view import ClusterView
from modeldeploy.controller.kube import Kube
from modeldeploy.render.common import namespace_of


async def verification_refusal(
    policy: VerificationPolicy, md: ModelDeployment, cluster: ClusterView, kube: Kube
) -> str | None:
    namespace = namespace_of(md)
    labels = cluster.namespace_labels(namespace)
    if labels is None:
        # The namespace watch has not delivered it yet (the operator just started): read it, so
        # that the policy is never skipped.
        found = await kube.get("v1", "Namespace", "", namespace) or {}
        labels = found.get("metadata", {}).get("labels") or {}
    return policy.refusal(md, labels)
