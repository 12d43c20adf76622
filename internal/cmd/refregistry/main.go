// Command refregistry runs go-containerregistry's registry (pkg/registry)
// with the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>) turned
// on, as a process: the test registry with referrers that CNCF distribution
// (Debian's docker-registry) does not have yet (issue 18). Tests start it
// through internal/rig's StartReferrersRegistry.
//
//	go run ./internal/cmd/refregistry                    # 127.0.0.1, a free port
//	go run ./internal/cmd/refregistry -addr 127.0.0.1:5000 -blobs /tmp/blobs
//
// Its first stdout line is the address it listens on (host:port); every
// request is logged to stderr (method, URL, and status and error code when
// it fails). Manifests live in memory, blobs in memory or under -blobs. It
// stops on SIGINT or SIGTERM.
//
// What the referrers API of this registry does (go-containerregistry
// v0.22.1), which tests must allow for: it lists every manifest in the
// repository whose subject is the digest asked for; it ignores the
// artifactType query parameter (no OCI-Filters-Applied header); the
// artifactType of each descriptor is the manifest's config media type,
// not its artifactType field (so `oras discover --artifact-type` finds
// nothing for an oras attach artifact); it sends no OCI-Subject header when
// a manifest with a subject is pushed (go-containerregistry's clients, as
// cosign, then probe the API and find it; oras writes the referrers tag
// schema's sha256-<hex> index as well, unless told --distribution-spec
// v1.1-referrers-api).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "refregistry:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("refregistry", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (port 0: a free one)")
	blobs := fs.String("blobs", "", "keep blobs in this directory (default: in memory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	opts := []registry.Option{
		registry.WithReferrersSupport(true),
		registry.Logger(log.New(os.Stderr, "", log.LstdFlags)),
	}
	if *blobs != "" {
		if err := os.MkdirAll(*blobs, 0o755); err != nil {
			return fmt.Errorf("blob directory: %w", err)
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(*blobs)))
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler:           registry.New(opts...),
		ReadHeaderTimeout: 30 * time.Second,
	}
	fmt.Println(l.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
