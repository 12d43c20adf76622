#!/usr/bin/env bash
# Installs mirror: built from the action's own checkout, or `go install`ed
# at INPUT_VERSION. Puts it on PATH for later steps. With INPUT_GATEWAY
# (URLs, one a line or comma-separated), exports MIRROR_GATEWAY for the
# job's later mirror commands. Outputs: path, version, gateway.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

bin_dir="$(tmpdir)/mirror-bin"
mkdir -p "$bin_dir"
version=${INPUT_VERSION:-}
if [[ -n $version ]]; then
  echo "go install github.com/ipfs-mirror/mirror/cmd/mirror@$version"
  GOBIN=$bin_dir go install -ldflags "-X main.version=$version" "github.com/ipfs-mirror/mirror/cmd/mirror@$version"
else
  label=$(git -C "$MIRROR_ROOT" describe --tags --always --dirty 2>/dev/null || true)
  label=${label:-${GITHUB_ACTION_REF:-dev}}
  echo "go build ./cmd/mirror in $MIRROR_ROOT ($label)"
  (cd "$MIRROR_ROOT" && go build -ldflags "-X main.version=$label" -o "$bin_dir/mirror" ./cmd/mirror)
fi
addpath "$bin_dir"
"$bin_dir/mirror" version
out path "$bin_dir/mirror"
out version "$("$bin_dir/mirror" version | awk '{ print $2 }')"

# Trustless gateways: checked (http or https), passwords masked, exported.
gateways=()
while IFS= read -r line || [[ -n $line ]]; do
  IFS=',' read -ra parts <<<"${line%$'\r'}"
  for g in "${parts[@]}"; do
    g=${g//[[:space:]]/}
    [[ -z $g ]] && continue
    case $g in
      http://?* | https://?*) ;;
      *) die "gateway: want http(s) URLs (https://trustless-gateway.link), one a line or comma-separated" ;;
    esac
    userinfo=${g#*://}
    userinfo=${userinfo%%/*}
    if [[ $userinfo == *@* ]]; then
      userinfo=${userinfo%@*}
      [[ $userinfo == *:* ]] && printf '::add-mask::%s\n' "${userinfo#*:}"
    fi
    gateways+=("$g")
  done
done <<<"${INPUT_GATEWAY:-}"
joined=$(IFS=,; printf '%s' "${gateways[*]}")
if [[ -n $joined ]]; then
  setenv MIRROR_GATEWAY "$joined"
  echo "MIRROR_GATEWAY: later mirror pull, inspect, serve and verify read through ${#gateways[@]} trustless gateway(s), with no IPFS node"
fi
out gateway "$joined"
