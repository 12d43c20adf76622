#!/usr/bin/env bash
# Installs mirror: built from the action's own checkout, or `go install`ed
# at INPUT_VERSION. Puts it on PATH for later steps. Outputs: path, version.
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
