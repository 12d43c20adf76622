#!/usr/bin/env bash
# Is a Go toolchain new enough for the action's go.mod on PATH? Outputs:
# needed (true: run actions/setup-go), version-file (go.mod for it).
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

want=$(awk '$1 == "go" { print $2; exit }' "$MIRROR_ROOT/go.mod")
needed=true
if command -v go >/dev/null; then
  # The toolchain on PATH itself, not one a go.mod in the workspace would
  # switch to.
  have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null || true)
  have=${have#go}
  have=${have%%[!0-9.]*}
  if [[ -n $have && $(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1) == "$want" ]]; then
    needed=false
  fi
  echo "go $have on PATH; go.mod wants $want"
else
  echo "no go on PATH; go.mod wants $want"
fi
out needed "$needed"
out version-file "$MIRROR_ROOT/go.mod"
