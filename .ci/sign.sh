# shellcheck shell=bash
# Sourced by .ci/run before the tests (set -euo pipefail, $CACHE, step(),
# quiet(): builds log to $CI_LOGS, printed only when they fail).
# The signing tools of issue 18's tests (internal/rig's SignedImage), built
# OUTSIDE our module (a throwaway module per tool with an exact `require`:
# `go install …@v` asks the proxy for a version list it refuses) and cached
# in $CACHE/bin, keyed by version and Go version:
#   cosign   github.com/sigstore/cosign/v2  v2.6.1  (sign, attest, verify;
#            used offline: --key, --tlog-upload=false)
#   oras     oras.land/oras                 v1.3.6  (attach, discover)
# Cold build (empty Go build cache for them, module downloads included): cosign
# 1208 s, oras 34 s more, measured with the 2 cores shared by other builds
# (load average 15-17; 6m52s user + 1m32s sys of CPU): about 4-5 minutes
# on an idle 2-core machine. Cached afterwards: 0 s.

sign_go=$(go env GOVERSION)

# sign_build NAME MODULE VERSION PKG: builds PKG in a throwaway module that
# requires MODULE@VERSION, into $CACHE/bin/NAME-VERSION-GO, unless cached,
# and links $CACHE/bin/NAME.
sign_build() {
  local name=$1 module=$2 version=$3 pkg=$4
  local bin="$CACHE/bin/$name-$version-$sign_go"
  if [ ! -x "$bin" ]; then
    local tmp start
    tmp=$(mktemp -d)
    start=$(date +%s)
    cat >"$tmp/go.mod" <<MOD
module ${name}build

go 1.26

require $module $version
MOD
    (cd "$tmp" && GOFLAGS=-mod=mod quiet "$name-build" go build -trimpath -o "$tmp/$name" "$pkg")
    mv "$tmp/$name" "$bin"
    rm -rf "$tmp"
    echo "built $name $version in $(( $(date +%s) - start ))s"
  fi
  ln -sf "$(basename "$bin")" "$CACHE/bin/$name"
}

step "cosign v2.6.1 and oras v1.3.6 (signatures, attestations, referrers), built in throwaway modules, cached"
sign_build cosign github.com/sigstore/cosign/v2 v2.6.1 github.com/sigstore/cosign/v2/cmd/cosign
sign_build oras oras.land/oras v1.3.6 oras.land/oras/cmd/oras
export MIRROR_COSIGN_BIN="$CACHE/bin/cosign"
export MIRROR_ORAS_BIN="$CACHE/bin/oras"
case ":$PATH:" in *":$CACHE/bin:"*) ;; *) export PATH="$CACHE/bin:$PATH" ;; esac
firstline GitVersion -- "$MIRROR_COSIGN_BIN" version
firstline "$MIRROR_ORAS_BIN" version
