#!/usr/bin/env bash
# Builds the local cluster's binaries from Go modules into a cache keyed by version:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl  (k8s.io/kubernetes)
#   etcd                                                               (go.etcd.io/etcd/server/v3)
#   kwok, kwokctl                                                      (sigs.k8s.io/kwok)
#   helm                                                               (helm.sh/helm/v3)
#   flagger and its CRDs, the benchmark's Go peer (not in `all`)       (github.com/fluxcd/flagger)
#   the real node (not in `all`): kubelet, kube-proxy                  (k8s.io/kubernetes)
#                                 containerd, ctr, containerd-shim-runc-v2 (github.com/containerd/containerd/v2)
#                                 traefik, its Gateway API data plane (github.com/traefik/traefik/v3)
#   gitops-verdicts, the tests' kstatus and Argo CD Lua harness (hack/gitops-verdicts; not in `all`)
# and unpacks the CRDs of Gateway API, Istio, SMI and KEDA from their modules.
# A warm cache makes this a no-op.
#
# Usage: hack/build-binaries.sh [all|kube|etcd|kwok|helm|crds|flagger|node|traefik|gitops-verdicts]...
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${MODELDEPLOY_CACHE:-$HOME/.cache/modeldeploy}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$cache/logs"

say() { printf '[build] %s\n' "$*" >&2; }
fail() { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

# run LOG CMD...: run a step with its output in LOG, and say where the log is when it fails.
run() {
  local log=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "'$*' failed; full log: $log"
  fi
}

module_gomod() { # path of a module's go.mod in the module cache
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'
}

module_dir() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# all_built DIR TOOL...: every tool is already in DIR.
all_built() {
  local dir=$1 t; shift
  for t in "$@"; do [[ -x "$dir/$t" ]] || return 1; done
}

# build_missing WORK LOG OUT PACKAGE TAGS LDFLAGS TOOL...: `go build` in the wrapper module WORK
# of each PACKAGE/TOOL not yet in OUT.
build_missing() {
  local work=$1 log=$2 out=$3 pkg=$4 tags=$5 ldflags=$6 t; shift 6
  ( cd "$work"
    for t in "$@"; do
      [[ -x "$out/$t" ]] && continue
      say "  go build $t"
      run "$log" go build -trimpath -tags "$tags" -ldflags "-s -w $ldflags" -o "$out/$t" "$pkg/$t"
    done )
}

# build_kube [TOOL...]: the control plane's binaries by default; the real node asks for
# kubelet and kube-proxy, built in the same wrapper module (and Go build cache).
build_kube() {
  local out="$cache/kube-$KUBE_VERSION/bin"
  local tools=("$@")
  [[ ${#tools[@]} == 0 ]] && tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  all_built "$out" "${tools[@]}" && return 0
  say "building Kubernetes $KUBE_VERSION ${tools[*]} (cold: 8-30 minutes on 2 cores)"
  local work="$cache/build/kube-$KUBE_VERSION" log="$cache/logs/build-kube-$KUBE_VERSION.log"
  mkdir -p "$work" "$out"; : >"$log"
  local staging=${KUBE_VERSION/v1./v0.}
  # The root go.mod points every k8s.io staging module at a local path with version v0.0.0;
  # replace each with its published version, read from the target's own go.mod so the set
  # follows the release.
  {
    echo "module modeldeploy.local/kube-build"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$(module_gomod "k8s.io/kubernetes@$KUBE_VERSION")"
  } >"$work/go.mod"
  local ldflags=""
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION") -X $pkg.gitTreeState=clean"
  done
  build_missing "$work" "$log" "$out" k8s.io/kubernetes/cmd "" "$ldflags" "${tools[@]}"
}

build_etcd() {
  local out="$cache/etcd-$ETCD_VERSION/bin"
  [[ -x "$out/etcd" ]] && return 0
  say "building etcd $ETCD_VERSION"
  local work="$cache/build/etcd-$ETCD_VERSION" log="$cache/logs/build-etcd-$ETCD_VERSION.log"
  mkdir -p "$work" "$out"; : >"$log"
  # go install ...@version is refused because of etcd's replace lines; a wrapper that
  # requires the server module builds its main package.
  printf 'module modeldeploy.local/etcd-build\ngo 1.26\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$work/go.mod"
  ( cd "$work" && run "$log" go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3 )
  [[ -x "$out/etcd" ]] || fail "etcd build produced no binary; log: $log"
}

# go_install NAME VERSION GOBIN LDFLAGS PACKAGE...: `go install` of released commands into GOBIN.
go_install() {
  local name=$1 version=$2 out=$3 ldflags=$4; shift 4
  say "building $name $version"
  local log="$cache/logs/build-${name,,}-$version.log"
  mkdir -p "$out"; : >"$log"
  run "$log" env GOBIN="$out" go install -trimpath -ldflags "-s -w $ldflags" "$@"
}

build_kwok() {
  local out="$cache/kwok-$KWOK_VERSION/bin"
  [[ -x "$out/kwok" && -x "$out/kwokctl" ]] && return 0
  go_install KWOK "$KWOK_VERSION" "$out" "" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

build_helm() {
  local out="$cache/helm-$HELM_VERSION/bin"
  [[ -x "$out/helm" ]] && return 0
  go_install helm "$HELM_VERSION" "$out" "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# containerd v2 for the real node: static, no cgo (so no btrfs snapshotter; overlayfs is used).
build_containerd() {
  local out="$cache/containerd-$CONTAINERD_VERSION/bin"
  local tools=(containerd ctr containerd-shim-runc-v2)
  all_built "$out" "${tools[@]}" && return 0
  say "building containerd $CONTAINERD_VERSION (cold: about 3 minutes)"
  local work="$cache/build/containerd-$CONTAINERD_VERSION" log="$cache/logs/build-containerd-$CONTAINERD_VERSION.log"
  mkdir -p "$work" "$out"; : >"$log"
  printf 'module modeldeploy.local/containerd-build\ngo 1.26\nrequire github.com/containerd/containerd/v2 %s\n' \
    "$CONTAINERD_VERSION" >"$work/go.mod"
  local pkg=github.com/containerd/containerd/v2
  build_missing "$work" "$log" "$out" "$pkg/cmd" no_btrfs \
    "-X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=module" "${tools[@]}"
}

# Traefik is the real node's Gateway API data plane. Its go.mod has replace and exclude lines
# that a `go install` refuses, so a wrapper module requires it and copies them. v3.7 cannot be
# built from the module proxy (a replace points at a nested module the zip leaves out).
build_traefik() {
  local out="$cache/traefik-$TRAEFIK_VERSION/bin"
  [[ -x "$out/traefik" ]] && return 0
  say "building Traefik $TRAEFIK_VERSION (cold: about 17 minutes on 2 cores)"
  local work="$cache/build/traefik-$TRAEFIK_VERSION" log="$cache/logs/build-traefik-$TRAEFIK_VERSION.log"
  local gomod
  mkdir -p "$work" "$out"; : >"$log"
  gomod=$(module_gomod "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
  {
    echo "module modeldeploy.local/traefik-build"
    sed -n 's/^go \(.*\)/go \1/p' "$gomod"
    echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
    sed -n '/^replace (/,/^)/p; /^replace [^(]/p; /^exclude /p' "$gomod"
  } >"$work/go.mod"
  ( cd "$work" && run "$log" go build -trimpath \
      -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
      -o "$out/traefik" github.com/traefik/traefik/v3/cmd/traefik )
}

# Flagger is what bench/ compares the operator with; its CRDs ship in the module next to its code.
build_flagger() {
  local out="$cache/flagger-$FLAGGER_VERSION"
  [[ -x "$out/bin/flagger" && -f "$out/crd.yaml" ]] && return 0
  go_install Flagger "$FLAGGER_VERSION" "$out/bin" "" "github.com/fluxcd/flagger/cmd/flagger@$FLAGGER_VERSION"
  cp "$(module_dir "github.com/fluxcd/flagger@$FLAGGER_VERSION")/artifacts/flagger/crd.yaml" "$out/crd.yaml.tmp"
  mv "$out/crd.yaml.tmp" "$out/crd.yaml"
}

# The harness is the project's own module, so it is cached by a hash of its sources (and the Go
# release) instead of a version; the binary's path is printed on stdout for the tests.
build_gitops_verdicts() {
  local src="$here/gitops-verdicts" key
  key=$( (go env GOVERSION; cd "$src" && cat go.mod go.sum ./*.go) | sha256sum | cut -c1-16)
  local out="$cache/gitops-verdicts-$key/bin"
  if [[ ! -x "$out/gitops-verdicts" ]]; then
    say "building gitops-verdicts $key (cold: about 30 seconds)"
    local log="$cache/logs/build-gitops-verdicts-$key.log"
    mkdir -p "$out"; : >"$log"
    # Built beside its final name and renamed, so that concurrent test sessions never run a
    # half-written binary.
    ( cd "$src" && run "$log" go build -trimpath -ldflags "-s -w" -o "$out/gitops-verdicts.$$" . )
    mv "$out/gitops-verdicts.$$" "$out/gitops-verdicts"
  fi
  echo "$out/gitops-verdicts"
}

# concat_yaml OUT FILE...: the files as one multi-document YAML, written atomically.
concat_yaml() {
  local out=$1; shift
  local f
  for f in "$@"; do printf -- '---\n'; cat "$f"; done >"$out.tmp"
  mv "$out.tmp" "$out"
}

# The CRDs the local cluster installs so that every provider's objects are validated by the
# API server: Gateway API (standard channel), Istio, SMI TrafficSplit (converted from the
# apiextensions v1beta1 it ships, which Kubernetes no longer serves) and KEDA.
unpack_crds() {
  local out="$cache/crds" dir
  mkdir -p "$out"
  if [[ ! -f "$out/gateway-api-$GATEWAY_API_VERSION.yaml" ]]; then
    say "unpacking Gateway API $GATEWAY_API_VERSION CRDs"
    dir=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
    concat_yaml "$out/gateway-api-$GATEWAY_API_VERSION.yaml" "$dir"/config/crd/standard/*.yaml
  fi
  if [[ ! -f "$out/istio-$ISTIO_API_VERSION.yaml" ]]; then
    say "unpacking Istio $ISTIO_API_VERSION CRDs"
    dir=$(module_dir "istio.io/api@$ISTIO_API_VERSION")
    concat_yaml "$out/istio-$ISTIO_API_VERSION.yaml" "$dir/kubernetes/customresourcedefinitions.gen.yaml"
  fi
  if [[ ! -f "$out/smi-$SMI_SDK_VERSION.yaml" ]]; then
    say "converting SMI $SMI_SDK_VERSION TrafficSplit CRD"
    dir=$(module_dir "github.com/servicemeshinterface/smi-sdk-go@$SMI_SDK_VERSION")
    python3 "$here/crd-to-v1.py" <"$dir/crds/split.yaml" >"$out/smi-$SMI_SDK_VERSION.yaml.tmp"
    mv "$out/smi-$SMI_SDK_VERSION.yaml.tmp" "$out/smi-$SMI_SDK_VERSION.yaml"
  fi
  if [[ ! -f "$out/keda-$KEDA_VERSION.yaml" ]]; then
    # KEDA's kustomize patches only bound stabilizationWindowSeconds (the API does too) and
    # adjust ScaledJob pod templates, so the bases are used as they are.
    say "unpacking KEDA $KEDA_VERSION CRDs"
    dir=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
    concat_yaml "$out/keda-$KEDA_VERSION.yaml" "$dir"/config/crd/bases/keda.sh_*.yaml
  fi
}

targets=("$@")
[[ ${#targets[@]} == 0 ]] && targets=(all)
for target in "${targets[@]}"; do
  case $target in
    all) build_etcd; build_kwok; unpack_crds; build_kube; build_helm ;;
    kube) build_kube ;;
    etcd) build_etcd ;;
    kwok) build_kwok ;;
    helm) build_helm ;;
    flagger) build_flagger ;;
    crds) unpack_crds ;;
    node) build_kube; build_kube kubelet kube-proxy; build_containerd; build_traefik ;;
    traefik) build_traefik ;;
    gitops-verdicts) build_gitops_verdicts ;;
    *) fail "unknown target '$target' (allowed: all kube etcd kwok helm crds flagger node traefik gitops-verdicts)" ;;
  esac
done
