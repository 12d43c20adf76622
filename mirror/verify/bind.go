package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
)

// ErrWrongImage is matched by a lockfile entry whose CID names another
// image than the entry's source: the config digests of the tree under the
// CID are not those the entry records.
var ErrWrongImage = errors.New("the CID holds another image than the entry's source")

// TreeConfigs returns the config digests of every manifest of tree, sorted
// and without repeats: what a lockfile entry records (Entry.Configs) to tie
// its CID to its source. In plain and encrypted modes these are the
// source's own config digests (the IPFS-enabled format keeps configs byte
// for byte); eStargz rewrites each config's diff_ids, so there they are the
// converted configs.
func TreeConfigs(tree *manifests.Tree) ([]string, error) {
	var out []string
	for d, raw := range tree.Docs {
		desc, ok := tree.Descs[d]
		if !ok || !manifests.IsManifest(desc.MediaType) {
			continue
		}
		var m struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", d, err)
		}
		if m.Config.Digest == "" {
			return nil, fmt.Errorf("manifest %s: %w: no config", d, manifests.ErrNotIPFSImage)
		}
		out = append(out, m.Config.Digest)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CheckBinding fails with ErrWrongImage when e records config digests and
// tree's are not the same. An entry that records none (a lockfile written
// before they were) is not checked.
func CheckBinding(tree *manifests.Tree, e lockfile.Entry) error {
	if len(e.Configs) == 0 {
		return nil
	}
	got, err := TreeConfigs(tree)
	if err != nil {
		return err
	}
	want := slices.Compact(slices.Sorted(slices.Values(e.Configs)))
	if !slices.Equal(got, want) {
		return fmt.Errorf("%w: the lockfile records configs %s, ipfs://%s has %s", ErrWrongImage, strings.Join(want, ", "), e.CID, strings.Join(got, ", "))
	}
	return nil
}

// EntryBinding resolves e's tree (documents only, no blob is read) and
// checks it against e (CheckBinding); it returns the tree's configs.
func EntryBinding(ctx context.Context, store ipfs.Store, e lockfile.Entry) ([]string, error) {
	root, err := ipfs.ParseCID(e.CID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", manifests.ErrNotIPFSImage, err)
	}
	tree, err := manifests.Resolve(ctx, store, root)
	if err != nil {
		return nil, err
	}
	if err := CheckBinding(tree, e); err != nil {
		return nil, err
	}
	return TreeConfigs(tree)
}
