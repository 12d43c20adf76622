package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror"
	kuborpc "github.com/ipfs-mirror/mirror/mirror/ipfs/kubo"
)

// profileInProcess runs what `mirror push SOURCE` runs — mirror.Push through
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
	path := filepath.Join(b.o.profile, file)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	k0 := b.k.cpu()
	t0 := time.Now()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	_, err = mirror.Push(ctx, w, source, mirror.PushOptions{Registry: mirror.RegistryOptions{Insecure: true, UserAgent: "mirror-bench"}})
	pprof.StopCPUProfile()
	if err != nil {
		return fmt.Errorf("in-process push of %s: %w", source, err)
	}
	b.logf("profile: wrote %s (in-process mirror.Push of %s in %s; kubo used %.1f CPU s meanwhile)", path, source, time.Since(t0).Round(time.Millisecond), b.k.cpu()-k0)
	return nil
}
