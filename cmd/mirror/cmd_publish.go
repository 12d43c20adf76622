package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/publish"
)

// PublishCmd is `mirror publish`.
type PublishCmd struct {
	Lock     string `arg:"" name:"LOCKFILE" help:"The lockfile to publish (mirrors.lock)." type:"existingfile"`
	WithList string `name:"with-list" placeholder:"FILE" help:"Publish the mirror list too: both files in one UnixFS directory (by their base names)." type:"existingfile"`
	IPNSKey  string `name:"ipns-key" placeholder:"NAME" help:"Also publish the CID as /ipns/NAME's value, with this key of the node's keystore (ipfs key gen / ipfs key import)."`
}

// publishOutput is the --json form.
type publishOutput struct {
	CID       string              `json:"cid"`
	Directory bool                `json:"directory"`
	Files     []publish.Published `json:"files"`
	Pinned    bool                `json:"pinned"`
	IPNS      *ipnsOutput         `json:"ipns,omitempty"`
}

type ipnsOutput struct {
	Key   string `json:"key"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Run publishes.
func (c *PublishCmd) Run(ctx context.Context, g *Globals) error {
	ctx, cancel := g.withTimeout(ctx)
	defer cancel()
	data, err := os.ReadFile(c.Lock)
	if err != nil {
		return err
	}
	// Never publish what mirror could not read back.
	if _, err := lockfile.Parse(c.Lock, data); err != nil {
		return configError{err}
	}
	files := []publish.File{{Name: filepath.Base(c.Lock), Data: data}}
	if c.WithList != "" {
		if _, err := config.Load(c.WithList); err != nil {
			return configError{err}
		}
		list, err := os.ReadFile(c.WithList)
		if err != nil {
			return err
		}
		files = append(files, publish.File{Name: filepath.Base(c.WithList), Data: list})
		if files[0].Name == files[1].Name {
			return usageError{fmt.Errorf("the lockfile and the list are both named %q: the published directory needs two names", files[0].Name)}
		}
	}
	store, err := g.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	// Refuse before adding anything when the node cannot publish names.
	np, canName := store.(ipfs.NamePublisher)
	if c.IPNSKey != "" && !canName {
		return usageError{fmt.Errorf("--ipns-key: the %s cannot publish IPNS names (use a kubo daemon or the embedded node)", ipfs.Describe(store))}
	}
	res, err := publish.Publish(ctx, store, files)
	if err != nil {
		return err
	}
	out := publishOutput{CID: res.CID.String(), Directory: res.Directory, Files: res.Files, Pinned: true}
	if res.Directory {
		fmt.Fprintf(g.stderr, "published %s as the directory /ipfs/%s (pinned)\n", names(res.Files), res.CID)
	} else {
		fmt.Fprintf(g.stderr, "published %s as /ipfs/%s (pinned)\n", res.Files[0].Name, res.CID)
	}
	if c.IPNSKey != "" {
		name, err := np.PublishIPNS(ctx, c.IPNSKey, res.CID)
		if errors.Is(err, ipfs.ErrNoKey) {
			return usageError{fmt.Errorf("publishing /ipfs/%s under the IPNS key %q: %w (create it with `ipfs key gen %s`, or bring one with `ipfs key import %s FILE`)", res.CID, c.IPNSKey, err, c.IPNSKey, c.IPNSKey)}
		}
		if err != nil {
			return fmt.Errorf("publishing /ipfs/%s under the IPNS key %q: %w", res.CID, c.IPNSKey, err)
		}
		out.IPNS = &ipnsOutput{Key: c.IPNSKey, Name: name, Value: "/ipfs/" + res.CID.String()}
		fmt.Fprintf(g.stderr, "published /ipns/%s → /ipfs/%s\n", name, res.CID)
	}
	if g.JSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(g.stdout, res.CID.String())
	if out.IPNS != nil {
		fmt.Fprintln(g.stdout, "/ipns/"+out.IPNS.Name)
	}
	return nil
}

func names(fs []publish.Published) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Name)
	}
	return strings.Join(s, " and ")
}
