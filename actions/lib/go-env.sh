#!/usr/bin/env bash
# The key and paths for caching Go's build and module caches between runs
# (actions/cache). Outputs: key, paths.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

sum=$(sha256sum "$MIRROR_ROOT/go.sum" | cut -c1-16)
out key "mirror-go-${RUNNER_OS:-linux}-${RUNNER_ARCH:-x64}-$(go env GOVERSION)-$sum"
out paths "$(go env GOCACHE)
$(go env GOMODCACHE)"
