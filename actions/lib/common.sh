# shellcheck shell=bash
# Helpers for the action's steps. Sourced, never run. Every step script sets
# -euo pipefail itself and takes its inputs from INPUT_* environment
# variables (never from ${{ }} in the script text: no shell injection).

# MIRROR_ROOT is the repository the scripts belong to: the action's own
# checkout, whose go.mod pins kubo and builds mirror.
MIRROR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MIRROR_ROOT
export IPFS_TELEMETRY=off

# out NAME VALUE: a step output (multi-line values are fine).
out() {
  local name=$1 value=$2 delim
  if [[ $value == *$'\n'* ]]; then
    delim="EOF_$RANDOM$RANDOM$RANDOM"
    printf '%s<<%s\n%s\n%s\n' "$name" "$delim" "$value" "$delim" >>"${GITHUB_OUTPUT:-/dev/null}"
  else
    printf '%s=%s\n' "$name" "$value" >>"${GITHUB_OUTPUT:-/dev/null}"
  fi
}

# setenv NAME VALUE: an environment variable for the job's later steps.
setenv() {
  printf '%s=%s\n' "$1" "$2" >>"${GITHUB_ENV:-/dev/null}"
}

# addpath DIR: put DIR on PATH for the job's later steps (and this one).
addpath() {
  printf '%s\n' "$1" >>"${GITHUB_PATH:-/dev/null}"
  PATH="$1:$PATH"
}

# die MSG: an error annotation, then exit 1.
die() {
  printf '::error title=mirror action::%s\n' "$*"
  exit 1
}

# tmpdir: the runner's temporary directory.
tmpdir() {
  local d=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
  mkdir -p "$d"
  printf '%s\n' "$d"
}

# kubo_version: the kubo version the action's go.mod pins (v0.43.0).
kubo_version() {
  awk '$1 == "github.com/ipfs/kubo" { print $2; exit }' "$MIRROR_ROOT/go.mod"
}

# is_true VALUE: the input spellings of true.
is_true() {
  case ${1,,} in true | yes | 1 | on) return 0 ;; esac
  return 1
}

# api_url ADDR: the base URL of an RPC API given as a multiaddr or a URL.
api_url() {
  local a=$1
  case $a in
    http://* | https://*) printf '%s\n' "${a%/}" ;;
    /*)
      local proto host port scheme=http
      IFS=/ read -r _ proto host _ port _ <<<"$a"
      case $a in */https* | */tls*) scheme=https ;; esac
      [[ $proto == ip6 ]] && host="[$host]"
      printf '%s://%s:%s\n' "$scheme" "$host" "$port"
      ;;
    *) return 1 ;;
  esac
}

# header_args: reads INPUT_IPFS_API_HEADER ('NAME: VALUE' a line), masks
# each value in the log and fills the arrays MIRROR_HEADER_ARGS (for
# mirror) and CURL_HEADER_ARGS (for curl). Values are never printed.
header_args() {
  MIRROR_HEADER_ARGS=()
  CURL_HEADER_ARGS=()
  local line value
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z ${line//[[:space:]]/} ]] && continue
    [[ $line == *:* ]] || die "ipfs-api-header: want 'NAME: VALUE' lines"
    value=${line#*:}
    value=${value#"${value%%[![:space:]]*}"}
    [[ -n $value ]] && printf '::add-mask::%s\n' "$value"
    MIRROR_HEADER_ARGS+=(--ipfs-api-header "$line")
    CURL_HEADER_ARGS+=(-H "$line")
  done <<<"${INPUT_IPFS_API_HEADER:-}"
}

# mirror_bin: the mirror to run (MIRROR_BIN, else PATH).
mirror_bin() {
  if [[ -n ${MIRROR_BIN:-} ]]; then
    printf '%s\n' "$MIRROR_BIN"
  elif command -v mirror >/dev/null; then
    command -v mirror
  else
    die "mirror is not installed: use the setup action (uses: ipfs-mirror/mirror/actions/setup@v1) first"
  fi
}
