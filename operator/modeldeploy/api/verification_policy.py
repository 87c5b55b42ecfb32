"""The policy that can require signed models: operator-wide (`modeldeploy run --require-verification`,
Helm value `verification.required`) or per namespace (label `modeldeploy.io/require-verification: "true"`).

A ModelDeployment without `spec.model.verification` where the policy applies is refused: the
operator renders nothing for it and says which policy refused it. Pure: the namespace's labels
are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modeldeploy.api.models import MOUNTED_URI_SCHEMES, ModelDeployment

REQUIRE_VERIFICATION_LABEL = "modeldeploy.io/require-verification"
VERIFICATION_REQUIRED = "VerificationRequired"


@dataclass(frozen=True)
class VerificationPolicy:
    required_everywhere: bool = False

    def refusal(self, md: ModelDeployment, namespace_labels: Mapping[str, str]) -> str | None:
        """Why `md` may not be deployed, naming the policy; None when it may."""
        if md.spec.model.verification is not None:
            return None
        namespace = md.metadata.get("namespace", "")
        if self.required_everywhere:
            policy = (
                "the operator requires verified models in every namespace "
                "(modeldeploy run --require-verification, Helm value verification.required)"
            )
        elif namespace_labels.get(REQUIRE_VERIFICATION_LABEL) == "true":
            policy = (
                f"namespace {namespace} requires verified models (label {REQUIRE_VERIFICATION_LABEL}=true)"
            )
        else:
            return None
        scheme = md.spec.model.uri.partition("://")[0]
        if scheme in MOUNTED_URI_SCHEMES:
            return (
                f"{policy}: {scheme}:// models are mounted, not fetched, and cannot be verified; "
                "serve the model from s3, gs, hf, http(s) or file with spec.model.verification"
            )
        return f"{policy}: set spec.model.verification (a public key and the model's model-signing signature)"
