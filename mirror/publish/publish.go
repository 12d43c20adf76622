package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// File is one file Publish stores.
type File struct {
	// Name is the file's name in the published directory (no slash).
	Name string
	Data []byte
}

// Published is one file as stored.
type Published struct {
	Name string `json:"name"`
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

// Result tells what Publish stored.
type Result struct {
	// CID is what to share: the file's CID when one file was published,
	// else the CID of a UnixFS directory holding the files.
	CID cid.Cid
	// Directory says CID names a directory (several files).
	Directory bool
	Files     []Published
}

// Publish adds files to IPFS and pins them. One file is added alone (its
// CID is the result); several become one UnixFS directory, built exactly
// as `ipfs add -r --cid-version=1` builds it for the same files (so anyone
// can check the CID from a checkout), and pinned recursively.
func Publish(ctx context.Context, store ipfs.Store, files []File) (*Result, error) {
	if len(files) == 0 {
		return nil, errors.New("publish: no file")
	}
	names := map[string]bool{}
	for _, f := range files {
		if f.Name == "" || strings.ContainsAny(f.Name, "/\x00") || f.Name == "." || f.Name == ".." || path.Base(f.Name) != f.Name {
			return nil, fmt.Errorf("publish: %q is not a file name", f.Name)
		}
		if names[f.Name] {
			return nil, fmt.Errorf("publish: two files named %q", f.Name)
		}
		names[f.Name] = true
	}
	res := &Result{}
	links := make([]*ipld.Link, 0, len(files))
	for _, f := range files {
		c, err := store.Add(ctx, bytes.NewReader(f.Data))
		if err != nil {
			return nil, fmt.Errorf("adding %s: %w", f.Name, err)
		}
		tsize, err := pinhandle.SimulatedTsize(int64(len(f.Data)))
		if err != nil {
			return nil, err
		}
		res.Files = append(res.Files, Published{Name: f.Name, CID: c.String(), Size: int64(len(f.Data))})
		links = append(links, &ipld.Link{Name: f.Name, Size: tsize, Cid: c})
	}
	if len(files) == 1 {
		c, _ := cid.Decode(res.Files[0].CID)
		if err := store.Pin(ctx, c); err != nil {
			return nil, fmt.Errorf("pinning %s: %w", c, err)
		}
		res.CID = c
		return res, nil
	}
	nd, err := unixfsDir(links)
	if err != nil {
		return nil, err
	}
	c, err := store.PutBlock(ctx, cid.DagProtobuf, nd.RawData())
	if err != nil {
		return nil, fmt.Errorf("storing the directory: %w", err)
	}
	if !c.Equals(nd.Cid()) {
		return nil, fmt.Errorf("storing the directory: the node says %s, we computed %s", c, nd.Cid())
	}
	if err := store.Pin(ctx, c); err != nil {
		return nil, fmt.Errorf("pinning %s: %w", c, err)
	}
	sort.Slice(res.Files, func(i, j int) bool { return res.Files[i].Name < res.Files[j].Name })
	res.CID, res.Directory = c, true
	return res, nil
}

// unixfsDir is the basic (unsharded) UnixFS directory of links, sorted by
// name, as CIDv1 dag-pb sha2-256.
func unixfsDir(links []*ipld.Link) (*dag.ProtoNode, error) {
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	nd := ft.EmptyDirNode()
	if err := nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: multihash.SHA2_256}); err != nil {
		return nil, err
	}
	for _, l := range links {
		if err := nd.AddRawLink(l.Name, l); err != nil {
			return nil, err
		}
	}
	return nd, nil
}
