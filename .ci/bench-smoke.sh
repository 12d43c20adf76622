#!/usr/bin/env bash
# Smoke run of the benchmark program: `go run ./internal/cmd/mirror-bench --quick`
# (tiny sizes, one run of every case, well under a minute) so that the
# program cannot rot. It needs what .ci/run installs — docker-registry,
# skopeo and kubo's ipfs (MIRROR_IPFS_BIN) — plus curl and gzip, installed
# here when missing. It fails when the program fails; it does not judge the
# numbers (tiny sizes on a busy CI machine say nothing about speed).
set -euo pipefail
cd "$(dirname "$0")/.."
export IPFS_TELEMETRY=off
if [ -z "${MIRROR_IPFS_BIN:-}" ]; then
  cache="${MIRROR_CI_CACHE:-$HOME/.cache/mirror-ci}"
  if [ -x "$cache/bin/ipfs" ]; then
    export MIRROR_IPFS_BIN="$cache/bin/ipfs"
  fi
fi
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v gzip >/dev/null || missing+=(gzip)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go run ./internal/cmd/mirror-bench --quick --json --markdown "$out/bench.md" >"$out/bench.json"
cat "$out/bench.md"
