#!/usr/bin/env bash
# Builds kubo's ipfs into INPUT_DIR: from the action's go.mod (its tool line)
# when INPUT_VERSION is the version pinned there, else `go install`.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

want=${INPUT_VERSION:?}
dir=${INPUT_DIR:?}
mkdir -p "$dir"
start=$SECONDS
if [[ $want == "$(kubo_version)" ]]; then
  echo "go build github.com/ipfs/kubo/cmd/ipfs ($want, from $MIRROR_ROOT/go.mod)"
  (cd "$MIRROR_ROOT" && go build -o "$dir/ipfs" github.com/ipfs/kubo/cmd/ipfs)
else
  echo "go install github.com/ipfs/kubo/cmd/ipfs@$want"
  GOBIN=$dir go install "github.com/ipfs/kubo/cmd/ipfs@$want"
fi
echo "built in $((SECONDS - start))s: $("$dir/ipfs" version)"
