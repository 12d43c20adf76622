package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ipfs-mirror/mirror/manifests"
	kuborpc "github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
	"github.com/ipfs-mirror/mirror/mirror/oci"
	mreg "github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/serve"
)

// profileInProcess runs what `mirror push SOURCE` runs — oci.Push through
// a manifests.Writer into the kubo RPC store — inside this process under a
// CPU profile, so that mirror's own CPU can be read without a hook in the
// mirror binary. The profile is written to file in the --profile directory.
func (b *bench) profileInProcess(ctx context.Context, file, source string) error {
	if err := b.k.reset(ctx); err != nil {
		return err
	}
	store, err := kuborpc.New(b.k.api, kuborpc.Options{Pin: true})
	if err != nil {
		return err
	}
	defer store.Close()
	w := manifests.NewWriter(store, 4, nil)
	k0 := b.k.cpu()
	t0 := time.Now()
	path, stop, err := b.startProfile(file)
	if err != nil {
		return err
	}
	_, err = oci.Push(ctx, w, source, oci.PushOptions{Registry: mreg.Options{Insecure: true, UserAgent: "mirror-bench"}})
	stop()
	if err != nil {
		return fmt.Errorf("in-process push of %s: %w", source, err)
	}
	b.logf("profile: wrote %s (in-process oci.Push of %s in %s; kubo used %.1f CPU s meanwhile)", path, source, time.Since(t0).Round(time.Millisecond), b.k.cpu()-k0)
	return nil
}

// profileServeInProcess serves the IPFS store with the serve package (what
// `mirror serve` runs) inside this process under a CPU profile, while skopeo
// pulls root from it to a dir: twice (cold, then cached).
func (b *bench) profileServeInProcess(ctx context.Context, file, root string) error {
	store, err := kuborpc.New(b.k.api, kuborpc.Options{Pin: true})
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := serve.New(store, serve.Options{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()
	path, stopProfile, err := b.startProfile(file)
	if err != nil {
		return err
	}
	defer stopProfile()
	t0 := time.Now()
	for i := 0; i < 2; i++ {
		dir := filepath.Join(b.dir, "profile-pull")
		_ = os.RemoveAll(dir)
		_, err := b.exec(ctx, b.skopeoBin, "copy", "-q", "--policy", b.policy, "--src-tls-verify=false",
			"docker://"+ln.Addr().String()+"/ipfs/"+root, "dir:"+dir)
		_ = os.RemoveAll(dir)
		if err != nil {
			return fmt.Errorf("in-process serve: %w", err)
		}
	}
	b.logf("profile: wrote %s (in-process serve, two skopeo pulls in %s)", path, time.Since(t0).Round(time.Millisecond))
	return nil
}

// profileEstargz runs the in-process eStargz conversion of case 5 once
// more under a CPU profile.
func (b *bench) profileEstargz(ctx context.Context, file, ref string) error {
	path, stop, err := b.startProfile(file)
	if err != nil {
		return err
	}
	st, err := b.estargzInProcess(ctx, ref, 0)
	stop()
	if err != nil {
		return err
	}
	b.logf("profile: wrote %s (in-process convert.ToEstargz in %s)", path, st.Wall.Round(time.Millisecond))
	return nil
}

// startProfile starts this process's CPU profile into file under
// --profile; stop ends it and closes the file.
func (b *bench) startProfile(file string) (path string, stop func(), err error) {
	path = filepath.Join(b.o.profile, file)
	f, err := os.Create(path)
	if err != nil {
		return "", nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return "", nil, err
	}
	return path, func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
