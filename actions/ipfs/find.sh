#!/usr/bin/env bash
# Finds a kubo `ipfs` of the wanted version (INPUT_VERSION, default: the one
# the action's go.mod pins): on PATH, or built by an earlier run in the tool
# cache. Outputs: found, bin, dir (where a build goes), key (for
# actions/cache), version.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

want=${INPUT_VERSION:-$(kubo_version)}
[[ $want == v* ]] || want="v$want"
cache_root=${RUNNER_TOOL_CACHE:-$(tmpdir)}
dir="$cache_root/mirror-kubo/$want-${RUNNER_OS:-linux}-${RUNNER_ARCH:-x64}"
found=false bin=""
for c in "$(command -v ipfs || true)" "$dir/ipfs"; do
  [[ -n $c && -x $c ]] || continue
  have=$("$c" version --number 2>/dev/null || true)
  if [[ "v$have" == "$want" ]]; then
    found=true bin=$c
    break
  fi
  echo "ignoring $c: kubo $have, want $want"
done
echo "kubo $want: found=$found ${bin:+($bin)}"
out found "$found"
out bin "${bin:-$dir/ipfs}"
out dir "$dir"
out key "mirror-kubo-$want-${RUNNER_OS:-linux}-${RUNNER_ARCH:-x64}"
out version "$want"
