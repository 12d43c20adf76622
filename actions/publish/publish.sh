#!/usr/bin/env bash
# Publishes a lockfile (and its list) with `mirror publish`: added to IPFS,
# pinned, optionally named by an IPNS key (imported from INPUT_IPNS_PRIVATE_KEY
# when given). Outputs: cid, ipns-name, files.
#
# Inputs (environment): INPUT_LOCKFILE, INPUT_LIST, INPUT_IPNS_KEY,
# INPUT_IPNS_PRIVATE_KEY (base64 of `ipfs key export`), INPUT_IPFS_API,
# INPUT_IPFS_API_HEADER, MIRROR_BIN.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

mirror=$(mirror_bin)
lock=${INPUT_LOCKFILE:?the lockfile input is required}
header_args
global=("${MIRROR_HEADER_ARGS[@]}")
api=${INPUT_IPFS_API:-}
[[ -n $api ]] && global+=(--ipfs-api "$api")

args=(publish "$lock")
[[ -n ${INPUT_LIST:-} ]] && args+=(--with-list "$INPUT_LIST")
if [[ -n ${INPUT_IPNS_KEY:-} ]]; then
  args+=(--ipns-key "$INPUT_IPNS_KEY")
  if [[ -n ${INPUT_IPNS_PRIVATE_KEY:-} ]]; then
    # Bring the key into the node's keystore (once), over its RPC API.
    if [[ -z $api && -n ${IPFS_PATH:-} && -f $IPFS_PATH/api ]]; then
      api=$(cat "$IPFS_PATH/api")
    fi
    [[ -n $api ]] || die "ipns-private-key needs a running node (ipfs-api, or the ipfs action)"
    url=$(api_url "$api") || die "ipfs-api: not a multiaddr or URL"
    have=$(curl -fsS -X POST "${CURL_HEADER_ARGS[@]}" "$url/api/v0/key/list" | jq -r --arg k "$INPUT_IPNS_KEY" '.Keys[] | select(.Name == $k) | .Id')
    if [[ -z $have ]]; then
      keyfile=$(mktemp "$(tmpdir)/ipns-key.XXXXXX")
      trap 'rm -f "$keyfile"' EXIT
      base64 -d <<<"$INPUT_IPNS_PRIVATE_KEY" >"$keyfile" || die "ipns-private-key: not base64"
      curl -fsS -X POST "${CURL_HEADER_ARGS[@]}" -F "file=@$keyfile" \
        "$url/api/v0/key/import?arg=$INPUT_IPNS_KEY&format=libp2p-protobuf-cleartext" >/dev/null ||
        die "importing the IPNS key $INPUT_IPNS_KEY failed"
      rm -f "$keyfile"
      echo "imported the IPNS key $INPUT_IPNS_KEY"
    fi
  fi
fi

json=$("$mirror" "${global[@]}" --json "${args[@]}")
cid=$(jq -r .cid <<<"$json")
out cid "$cid"
out ipns-name "$(jq -r '.ipns.name // ""' <<<"$json")"
out files "$(jq -c .files <<<"$json")"
echo "published: /ipfs/$cid"
jq -r '.files[] | "  \(.name)  /ipfs/\(.cid)  \(.size) bytes"' <<<"$json"
if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
  {
    # shellcheck disable=SC2016 # Markdown code spans, not expansions
    printf '### mirror publish\n\n`%s` is `/ipfs/%s` (pinned)' "$lock" "$cid"
    name=$(jq -r '.ipns.name // ""' <<<"$json")
    # shellcheck disable=SC2016
    [[ -n $name ]] && printf ', published as `/ipns/%s`' "$name"
    printf '\n\n'
  } >>"$GITHUB_STEP_SUMMARY"
fi
