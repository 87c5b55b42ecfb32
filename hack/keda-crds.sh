#!/usr/bin/env bash
# Unpacks KEDA's keda.sh CRDs (ScaledObject, ScaledJob, TriggerAuthentication,
# ClusterTriggerAuthentication) from its Go module into DEST/keda.yaml, so that the local
# cluster validates the ScaledObjects the operator renders without running KEDA itself.
# KEDA's kustomize patches are not applied: they only bound stabilizationWindowSeconds to
# 0..3600 (the ModelDeployment API already does) and adjust ScaledJob pod templates.
#
# Usage: hack/keda-crds.sh DEST
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
version=${KEDA_VERSION:-v2.21.0}
dest=${1:?usage: hack/keda-crds.sh DEST}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

module="github.com/kedacore/keda/v2@$version"
if ! download=$(go mod download -json "$module"); then
  printf '[keda-crds] ERROR: go mod download %s failed:\n%s\n' "$module" "$download" >&2
  exit 1
fi
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$download")

mkdir -p "$dest"
tmp="$dest/keda.yaml.tmp"
: >"$tmp"
for f in "$dir"/config/crd/bases/keda.sh_*.yaml; do
  printf -- '---\n' >>"$tmp"
  cat "$f" >>"$tmp"
done
mv "$tmp" "$dest/keda.yaml"
