# shellcheck shell=bash
# Sourced by .ci/run before the tests (set -euo pipefail, $CACHE, step(),
# quiet(): builds log to $CI_LOGS, printed only when they fail).
# Tools for the GitHub Action's checks and tests, built OUTSIDE our module
# (their dependency graphs never touch go.mod) and cached in $CACHE/bin like
# kubo:
#   jq, curl, shellcheck  Debian packages (the action's scripts use jq and curl;
#                       actionlint runs shellcheck on every run: block)
#   actionlint          lints the example workflows (.ci/extra.sh)
#   ipfs-cluster-*      v1.1.0, for the persistence test (real cluster peers)

tools_go=$(go env GOVERSION)

step "Debian packages: jq, curl, shellcheck"
tools_missing=()
command -v jq >/dev/null || tools_missing+=(jq)
command -v curl >/dev/null || tools_missing+=(curl)
command -v shellcheck >/dev/null || tools_missing+=(shellcheck)
if [ ${#tools_missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  quiet tools-apt-update apt-get update -qq
  quiet tools-apt-install apt-get install -y -qq --no-install-recommends "${tools_missing[@]}"
fi
jq --version
shellcheck --version | sed -n 2p

step "actionlint, built outside our module, cached"
actionlint_version=v1.7.12
actionlint_bin="$CACHE/bin/actionlint-$actionlint_version-$tools_go"
if [ ! -x "$actionlint_bin" ]; then
  tools_tmp=$(mktemp -d)
  (cd "$tools_tmp" && GOFLAGS=-mod=mod GOBIN="$tools_tmp/bin" quiet actionlint-build go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version")
  mv "$tools_tmp/bin/actionlint" "$actionlint_bin"
  rm -rf "$tools_tmp"
fi
ln -sf "$(basename "$actionlint_bin")" "$CACHE/bin/actionlint"
firstline actionlint -version

step "ipfs-cluster v1.1.0 (service, ctl), built in a throwaway module, cached"
# `go install …@v1.1.0` asks the proxy for the module's version list, which
# it refuses; a module that requires the exact version needs no list.
cluster_version=v1.1.0
cluster_service="$CACHE/bin/ipfs-cluster-service-$cluster_version-$tools_go"
cluster_ctl="$CACHE/bin/ipfs-cluster-ctl-$cluster_version-$tools_go"
if [ ! -x "$cluster_service" ] || [ ! -x "$cluster_ctl" ]; then
  tools_tmp=$(mktemp -d)
  cat >"$tools_tmp/go.mod" <<MOD
module clusterbuild

go 1.26

require github.com/ipfs-cluster/ipfs-cluster $cluster_version
MOD
  (cd "$tools_tmp" && GOFLAGS=-mod=mod quiet cluster-build go build -o "$tools_tmp/bin/" \
    github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service \
    github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-ctl)
  mv "$tools_tmp/bin/ipfs-cluster-service" "$cluster_service"
  mv "$tools_tmp/bin/ipfs-cluster-ctl" "$cluster_ctl"
  rm -rf "$tools_tmp"
fi
ln -sf "$(basename "$cluster_service")" "$CACHE/bin/ipfs-cluster-service"
ln -sf "$(basename "$cluster_ctl")" "$CACHE/bin/ipfs-cluster-ctl"
export MIRROR_CLUSTER_SERVICE_BIN="$CACHE/bin/ipfs-cluster-service"
export MIRROR_CLUSTER_CTL_BIN="$CACHE/bin/ipfs-cluster-ctl"
ipfs-cluster-service --version
