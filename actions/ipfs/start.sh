#!/usr/bin/env bash
# Starts a kubo daemon on the runner (or reuses the one already running on
# the same repo), connects it to INPUT_PEERS and exports IPFS_PATH for later
# steps, so that `mirror` and `ipfs` find it. Outputs: api, ipfs-path,
# peer-id, addresses, pid, bin.
#
# Inputs (environment): IPFS_BIN, INPUT_IPFS_PATH, INPUT_PROFILE,
# INPUT_API, INPUT_SWARM, INPUT_SWARM_KEY, INPUT_PEERS, INPUT_OFFLINE,
# INPUT_CONFIG ('Key=JSON' lines for `ipfs config --json`).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

bin=${IPFS_BIN:-ipfs}
[[ -x $bin ]] || bin=$(command -v "$bin") || die "no ipfs binary"
export IPFS_PATH=${INPUT_IPFS_PATH:-$(tmpdir)/ipfs}
private=false
if [[ -n ${INPUT_SWARM_KEY:-} ]]; then
  private=true
  # A private network: only peers with the key, no public services.
  export LIBP2P_FORCE_PNET=1 LIBP2P_TCP_MUX=false
  setenv LIBP2P_FORCE_PNET 1
  setenv LIBP2P_TCP_MUX false
fi
ipfs() { "$bin" "$@"; }

running() {
  [[ -f $IPFS_PATH/api ]] && ipfs --api "$(cat "$IPFS_PATH/api")" id >/dev/null 2>&1
}

words() { tr ',' '\n' <<<"$1" | tr -s '[:space:]' '\n' | sed '/^$/d'; }

if running; then
  echo "reusing the daemon already running on $IPFS_PATH"
else
  if [[ ! -f $IPFS_PATH/config ]]; then
    profile=${INPUT_PROFILE:-}
    ipfs init --empty-repo ${profile:+--profile="$profile"} >/dev/null
  fi
  [[ -n ${INPUT_API:-} ]] && ipfs config Addresses.API "$INPUT_API"
  if [[ -n ${INPUT_SWARM:-} ]]; then
    ipfs config --json Addresses.Swarm "$(words "$INPUT_SWARM" | jq -R . | jq -cs .)"
  fi
  ipfs config --json Addresses.Gateway '[]'
  if $private; then
    umask 077
    printf '%s\n' "$INPUT_SWARM_KEY" >"$IPFS_PATH/swarm.key"
    umask 022
    ipfs config --json Bootstrap '[]'
    ipfs config --json AutoConf.Enabled false
    ipfs config --json Discovery.MDNS.Enabled false
    ipfs config Routing.Type dht
  fi
  if [[ -n ${INPUT_PEERS:-} ]]; then
    # Peering keeps the connections up (and reconnects) for the whole job.
    peering=$(words "$INPUT_PEERS" | jq -R 'capture("^(?<addr>.*)/p2p/(?<id>[^/]+)$") // error("peer \(.) has no /p2p/ID")' |
      jq -cs 'group_by(.id) | map({ID: .[0].id, Addrs: map(.addr | select(. != ""))})')
    ipfs config --json Peering.Peers "$peering"
  fi
  while IFS= read -r kv || [[ -n $kv ]]; do
    [[ -z ${kv//[[:space:]]/} ]] && continue
    ipfs config --json "${kv%%=*}" "${kv#*=}"
  done <<<"${INPUT_CONFIG:-}"

  args=(daemon --migrate=false)
  is_true "${INPUT_OFFLINE:-false}" && args+=(--offline)
  rm -f "$IPFS_PATH/api"
  log="$IPFS_PATH/daemon.log"
  # setsid: its own session, so the step's end does not take it down; the
  # runner stops it with the job's other orphans.
  setsid "$bin" "${args[@]}" >"$log" 2>&1 </dev/null &
  echo $! >"$IPFS_PATH/daemon.pid"
  for _ in $(seq 240); do
    grep -q 'Daemon is ready' "$log" && break
    kill -0 "$(cat "$IPFS_PATH/daemon.pid")" 2>/dev/null || { cat "$log"; die "ipfs daemon exited"; }
    sleep 0.5
  done
  grep -q 'Daemon is ready' "$log" || { cat "$log"; die "ipfs daemon not ready in 120s"; }
  grep -v '^WebUI' "$log" || true
fi

api=$(cat "$IPFS_PATH/api")
for p in $(words "${INPUT_PEERS:-}"); do
  ok=false
  for _ in $(seq 15); do
    if ipfs --api "$api" swarm connect "$p" >/dev/null 2>&1; then
      ok=true
      break
    fi
    sleep 2
  done
  $ok || die "could not connect to $p"
  echo "connected to $p"
done

setenv IPFS_PATH "$IPFS_PATH"
setenv IPFS_TELEMETRY off
addpath "$(dirname "$bin")"
out api "$api"
out ipfs-path "$IPFS_PATH"
out peer-id "$(ipfs config Identity.PeerID)"
out addresses "$(ipfs --api "$api" id -f '<addrs>')"
out pid "$(cat "$IPFS_PATH/daemon.pid" 2>/dev/null || true)"
out bin "$bin"
echo "IPFS node $(ipfs config Identity.PeerID) (private network: $private), RPC API $api"
