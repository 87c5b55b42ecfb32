#!/usr/bin/env bash
# Writes the traffic providers' CRDs that the local cluster lacks, from their Go modules:
#   <dest>/istio.yaml  Istio's CRDs (istio.io/api, kubernetes/customresourcedefinitions.gen.yaml)
#   <dest>/smi.yaml    SMI's TrafficSplit CRD (smi-sdk-go, crds/split.yaml), converted from
#                      apiextensions.k8s.io/v1beta1, which Kubernetes no longer serves, to v1
# Gateway API's CRDs come from hack/build-binaries.sh; ingress-nginx needs none.
#
# Usage: hack/provider-crds.sh DEST_DIR
set -euo pipefail

ISTIO_API_VERSION=v1.31.4
SMI_SDK_VERSION=v0.5.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=${1:?usage: hack/provider-crds.sh DEST_DIR}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

module_dir() { # the module's directory in the module cache, downloaded when missing
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

mkdir -p "$dest"
istio=$(module_dir "istio.io/api@$ISTIO_API_VERSION")
# The module cache is read-only; cat gives a writable copy, the rename a complete one.
cat "$istio/kubernetes/customresourcedefinitions.gen.yaml" >"$dest/istio.yaml.tmp"
mv "$dest/istio.yaml.tmp" "$dest/istio.yaml"

smi=$(module_dir "github.com/servicemeshinterface/smi-sdk-go@$SMI_SDK_VERSION")
python3 "$here/crd-to-v1.py" <"$smi/crds/split.yaml" >"$dest/smi.yaml.tmp"
mv "$dest/smi.yaml.tmp" "$dest/smi.yaml"
