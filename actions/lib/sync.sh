#!/usr/bin/env bash
# The root action's sync step: runs `mirror sync` with a report, the step
# summary and annotations, then sets the outputs whatever happened, and
# exits with mirror's exit code (a failed image leaves the step red, with
# the report written). Outputs: lockfile, changed, cids, report, exit-code.
#
# Inputs (environment): INPUT_CONFIG, INPUT_LOCKFILE, INPUT_JOBS,
# INPUT_ARGS, INPUT_IPFS_API, INPUT_IPFS_API_HEADER, MIRROR_BIN.
set -euo pipefail
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mirror=$(mirror_bin)
config=${INPUT_CONFIG:-mirrors.yaml}
lock=${INPUT_LOCKFILE:-}
[[ -n $lock ]] || lock="$(dirname "$config")/mirrors.lock"
report=$(mktemp "$(tmpdir)/mirror-report.XXXXXX")
rm -f "$report" # mirror writes it; absent means no report

digest() { if [[ -f $1 ]]; then sha256sum "$1" | cut -d' ' -f1; else echo absent; fi; }
before=$(digest "$lock")

header_args
global=("${MIRROR_HEADER_ARGS[@]}")
[[ -n ${INPUT_IPFS_API:-} ]] && global+=(--ipfs-api "$INPUT_IPFS_API")
args=(sync "$config" --lock "$lock" --jobs "${INPUT_JOBS:-4}" --report "$report" --github-annotations)
[[ -n ${GITHUB_STEP_SUMMARY:-} ]] && args+=(--summary "$GITHUB_STEP_SUMMARY")
read -r -a extra <<<"${INPUT_ARGS:-}"

set +e
"$mirror" "${global[@]}" "${args[@]}" "${extra[@]}"
code=$?
set -e

changed=false
[[ $(digest "$lock") != "$before" ]] && changed=true
cids='{}'
if [[ -s $report ]]; then
  # source → root CID of what this run mirrored or found current (plain
  # mode under the source itself, other modes as SOURCE#MODE).
  cids=$(jq -c '[.images[] | select(.status != "removed" and (.cid // "") != "")
    | {key: (if .mode == "plain" then .source else .source + "#" + .mode end), value: .cid}] | from_entries' "$report")
else
  report=""
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    # shellcheck disable=SC2016 # Markdown code spans, not expansions
    printf '### mirror sync `%s` failed (exit %d)\n\nNo image was mirrored: see the annotations and the log.\n\n' "$config" "$code" >>"$GITHUB_STEP_SUMMARY"
  fi
fi
out lockfile "$lock"
out changed "$changed"
out cids "$cids"
out report "$report"
out exit-code "$code"
echo "lockfile $lock (changed: $changed), report ${report:-none}, exit $code"
exit "$code"
