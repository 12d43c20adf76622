# shellcheck shell=bash
# Sourced by .ci/run before the tests (set -euo pipefail, $CACHE, step()).
# The real upstream container stack for the e2e tests of issue 12, built
# OUTSIDE our module (a throwaway module per tool with an exact `require`,
# as for ipfs-cluster in .ci/tools.sh) and cached in $CACHE/bin, keyed by
# version and Go version:
#   containerd, containerd-shim-runc-v2, ctr
#                       github.com/containerd/containerd/v2  v2.4.2
#   nerdctl             github.com/containerd/nerdctl/v2     v2.2.1
#   buildkitd, buildctl github.com/moby/buildkit             v0.26.3
#   containerd-stargz-grpc  internal/stack/stargz-snapshotter (our nested
#                       module, if present), keyed by a hash of its sources
#   crane               go-containerregistry, at our module's version
# and Debian's runc (containers), busybox-static (the runnable test image),
# fuse3 (stargz-snapshotter's FUSE mounts).
# Build chatter goes to a log file, printed only when a build fails.

stack_go=$(go env GOVERSION)

step "Debian packages: runc, busybox-static, fuse3"
stack_missing=()
command -v runc >/dev/null || stack_missing+=(runc)
# busybox-static, not busybox: the test image needs a static /bin/busybox.
dpkg -s busybox-static >/dev/null 2>&1 || stack_missing+=(busybox-static)
command -v fusermount3 >/dev/null || stack_missing+=(fuse3)
if [ ${#stack_missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${stack_missing[@]}" >/dev/null
fi
firstline runc --version

# stack_build NAME MODULE VERSION PKG... : builds the packages (their last
# path element names the binaries) in a throwaway module that requires
# MODULE@VERSION, into $CACHE/bin/<bin>-VERSION-GO, unless cached.
# $stack_mod_extra is added to the module's go.mod; $stack_prepare, when
# set, is called with the module's directory before the build.
stack_mod_extra=
stack_prepare=
stack_build() {
  local name=$1 module=$2 version=$3
  shift 3
  local pkg bin need=0
  for pkg in "$@"; do
    bin=${pkg##*/}
    [ -x "$CACHE/bin/$bin-$version-$stack_go" ] || need=1
  done
  if [ "$need" = 1 ]; then
    local tmp log start
    tmp=$(mktemp -d)
    log="$CACHE/build-$name-$version.log"
    start=$(date +%s)
    cat >"$tmp/go.mod" <<MOD
module ${name}build

go 1.26

require $module $version
$stack_mod_extra
MOD
    [ -z "$stack_prepare" ] || "$stack_prepare" "$tmp"
    # no_btrfs: containerd's btrfs snapshotter needs cgo and btrfs headers.
    if ! (cd "$tmp" && GOFLAGS=-mod=mod go build -tags no_btrfs -o "$tmp/bin/" "$@") >"$log" 2>&1; then
      echo "building $name $version failed:"; cat "$log"
      rm -rf "$tmp"
      return 1
    fi
    for pkg in "$@"; do
      bin=${pkg##*/}
      mv "$tmp/bin/$bin" "$CACHE/bin/$bin-$version-$stack_go"
    done
    rm -rf "$tmp"
    echo "built $name $version in $(( $(date +%s) - start ))s"
  fi
  for pkg in "$@"; do
    bin=${pkg##*/}
    ln -sf "$bin-$version-$stack_go" "$CACHE/bin/$bin"
  done
}

step "containerd v2.4.2 (containerd, shim, ctr), nerdctl v2.2.1, BuildKit v0.26.3, built in throwaway modules, cached"
stack_build containerd github.com/containerd/containerd/v2 v2.4.2 \
  github.com/containerd/containerd/v2/cmd/containerd \
  github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr
# nerdctl's main package links a test helper (cmd/nerdctl/helpers →
# pkg/testutil) that imports its test framework, the nested module
# github.com/containerd/nerdctl/mod/tigron v0.0.0, which nerdctl's own
# go.mod replaces with ./mod/tigron: it is on no module proxy. The binary
# never calls that helper; it needs only the one type it names, tig.T (an
# interface *testing.T satisfies), which this stub module provides.
nerdctl_tigron_stub() {
  mkdir -p "$1/tigron/tig"
  printf 'module github.com/containerd/nerdctl/mod/tigron\n\ngo 1.23\n' >"$1/tigron/go.mod"
  cat >"$1/tigron/tig/tig.go" <<'GO'
// Package tig is a stand-in for nerdctl's test framework type, for
// building the nerdctl binary only (see .ci/stack.sh).
package tig

// T is the part of *testing.T nerdctl's linked test helper uses.
type T interface {
	Helper()
	Log(args ...any)
	FailNow()
}
GO
}
stack_mod_extra='replace github.com/containerd/nerdctl/mod/tigron v0.0.0 => ./tigron'
stack_prepare=nerdctl_tigron_stub
stack_build nerdctl github.com/containerd/nerdctl/v2 v2.2.1 \
  github.com/containerd/nerdctl/v2/cmd/nerdctl
stack_mod_extra=
stack_prepare=
stack_build buildkit github.com/moby/buildkit v0.26.3 \
  github.com/moby/buildkit/cmd/buildkitd \
  github.com/moby/buildkit/cmd/buildctl
export MIRROR_CONTAINERD_BIN="$CACHE/bin/containerd"
export MIRROR_CTR_BIN="$CACHE/bin/ctr"
export MIRROR_SHIM_BIN="$CACHE/bin/containerd-shim-runc-v2"
export MIRROR_NERDCTL_BIN="$CACHE/bin/nerdctl"
export MIRROR_BUILDKITD_BIN="$CACHE/bin/buildkitd"
export MIRROR_BUILDCTL_BIN="$CACHE/bin/buildctl"
case ":$PATH:" in *":$CACHE/bin:"*) ;; *) export PATH="$CACHE/bin:$PATH" ;; esac
"$MIRROR_CONTAINERD_BIN" --version
"$MIRROR_NERDCTL_BIN" --version
"$MIRROR_BUILDKITD_BIN" --version

step "crane, go-containerregistry at our module's version, built in a throwaway module, cached"
# Not from our module: crane's CLI needs modules (cobra) our go.sum lacks.
crane_version=$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
stack_build crane github.com/google/go-containerregistry "$crane_version" \
  github.com/google/go-containerregistry/cmd/crane
export MIRROR_CRANE_BIN="$CACHE/bin/crane"
"$MIRROR_CRANE_BIN" version

if [ -f internal/stack/stargz-snapshotter/go.mod ]; then
  step "stargz-snapshotter's containerd-stargz-grpc (internal/stack/stargz-snapshotter), cached by source hash"
  stargz_hash=$(cd internal/stack/stargz-snapshotter &&
    { echo "$stack_go"; cat go.mod; [ ! -f go.sum ] || cat go.sum; git ls-files -co --exclude-standard -- '*.go' | LC_ALL=C sort | xargs cat; } |
    sha256sum | cut -c1-16)
  stargz_bin="$CACHE/bin/containerd-stargz-grpc-$stargz_hash"
  if [ ! -x "$stargz_bin" ]; then
    stargz_log="$CACHE/build-stargz.log"
    stargz_start=$(date +%s)
    if ! (cd internal/stack/stargz-snapshotter && GOFLAGS=-mod=mod go build -o "$stargz_bin.tmp" .) >"$stargz_log" 2>&1; then
      echo "building containerd-stargz-grpc failed:"; cat "$stargz_log"
      exit 1
    fi
    mv "$stargz_bin.tmp" "$stargz_bin"
    echo "built containerd-stargz-grpc in $(( $(date +%s) - stargz_start ))s"
  fi
  ln -sf "$(basename "$stargz_bin")" "$CACHE/bin/containerd-stargz-grpc"
  export MIRROR_STARGZ_BIN="$CACHE/bin/containerd-stargz-grpc"
fi
