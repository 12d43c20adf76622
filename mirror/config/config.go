// Package config loads mirrors.yaml, the list of images mirror sync keeps in
// IPFS.
//
// Load (or Parse) checks the whole file and returns every problem it finds as
// an *Error with the file, line and column of the offending YAML node,
// joined with errors.Join and sorted by position. What it returns on success
// is fully resolved: defaults applied, environment variables expanded,
// relative paths made relative to the list's directory, compose files
// expanded into one Image per image they name. The package does no network
// I/O; it reads only the compose files a list names.
//
// The format is documented in docs/mirrors-yaml.md.
package config

import (
	"regexp"
	"text/template"

	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/mirror/registry"
)

// Version is the only mirrors.yaml format version this package reads.
const Version = 1

// Pos is a position in a file.
type Pos struct {
	File   string
	Line   int // 1-based
	Column int // 1-based
}

// File is a loaded mirrors list.
type File struct {
	// Path is the file as named to Load or Parse; Dir is its directory,
	// against which relative paths in the list were resolved.
	Path string
	Dir  string

	Version int
	IPFS    IPFS

	// ImmutableTags, when set, matches tags that never move: once the
	// lockfile has an entry for such a tag, sync does not check the source
	// again. Nil when the list has no immutable_tags.
	ImmutableTags *regexp.Regexp

	// Prune makes every sync of the list release (unpin) what the
	// entries that left it had pinned, as `mirror sync --prune` does.
	Prune bool `json:",omitempty"`

	// Images are the resolved entries, in the order of the list; an entry
	// with compose: is replaced by one Image per distinct image its
	// services name, sorted by reference.
	Images []*Image
}

// IsImmutable reports whether tag matches immutable_tags.
func (f *File) IsImmutable(tag string) bool {
	return f.ImmutableTags != nil && tag != "" && f.ImmutableTags.MatchString(tag)
}

// IPFS is the ipfs: section.
type IPFS struct {
	// API is the node's RPC API: a multiaddr (/ip4/127.0.0.1/tcp/5001) or
	// an http(s) URL, with variables expanded. Empty means "not set": the
	// CLI then uses --ipfs-api or $IPFS_PATH/api.
	API string
	// APIPos is where API was set (zero when it was not).
	APIPos Pos `json:"-"`
	// Pin says whether mirrored blobs are pinned. Default true.
	Pin bool
}

// Image is one resolved image entry: one source and everything needed to
// mirror it.
type Image struct {
	// Source is the source as written in the list, variables expanded (a
	// "docker://" prefix removed). For images from a compose file it is
	// the canonical reference (Repository:Tag[@Digest]).
	Source string
	Kind   registry.Kind

	// For registry sources: the registry ("docker.io", never
	// "index.docker.io"), the repository path in it ("library/alpine"),
	// both joined ("docker.io/library/alpine"), and the tag and digest the
	// source names, if any. For an oci: source, Tag is the :TAG suffix.
	Registry   string
	Repo       string
	Repository string
	Tag        string
	Digest     string

	// Path is the file system path of an oci: or docker-archive: source,
	// resolved against the list's directory.
	Path string

	// Tags selects the tags to mirror of a registry source that names no
	// tag or digest. When the source names a tag, Tags is the list of
	// that one tag; when it names only a digest, Tags is empty.
	Tags TagSpec

	// Modes has at least one mode, no repeats, in the order written.
	Modes []modes.Mode
	// Platforms are os/arch[/variant] strings; empty means every platform
	// of the source.
	Platforms []string
	// Push are the templates of the registry references the converted image
	// is pushed to (see PushTargets); empty means no push.
	Push []string
	// Encrypt is set when Modes has modes.Encrypted.
	Encrypt *Encrypt
	// Estargz holds the options of modes.Estargz; nil means the defaults.
	Estargz *Estargz
	// Referrers, when set, also mirrors the OCI 1.1 referrers of each
	// mirrored manifest (registry sources only); nil: none.
	Referrers *Referrers `json:",omitempty"`
	// Verify, when set, is what the image must carry (a valid signature)
	// before it is mirrored (registry sources only); nil: nothing.
	Verify *Verify `json:",omitempty"`

	// Compose is the path of the compose file this image came from (empty
	// for an explicit entry) and Services the services of it (and of any
	// other compose entry naming the same image) that use it, sorted.
	Compose  string
	Services []string

	// Pos is the position of the entry in the mirrors list; ComposePos
	// that of the first service's image: in the compose file.
	Pos        Pos
	ComposePos Pos

	push []*template.Template
}

// Encrypt is the encrypt: section of an entry.
type Encrypt struct {
	// Recipients are ocicrypt recipients: "jwe:PUBKEY.pem",
	// "pkcs7:CERT.pem" (paths resolved against the list's directory) or
	// "pgp:EMAIL".
	Recipients []string
}

// Estargz is the estargz: section of an entry.
type Estargz struct {
	// CompressionLevel is the gzip level 1–9; 0 means the eStargz
	// library's default.
	CompressionLevel int
	// PrioritizedFiles is the path of a file listing, one per line, the
	// files to put first in the eStargz layers; resolved against the
	// list's directory. Empty means none.
	PrioritizedFiles string
}

// LockSource returns the source string the lockfile records for this image
// and tag: the canonical reference (Repository:tag, Repository@Digest or
// Repository:tag@Digest) for registry sources — tag "" means the source's
// own tag — and Source as written for oci: and docker-archive: sources.
func (img *Image) LockSource(tag string) string {
	if img.Kind != registry.KindRegistry {
		return img.Source
	}
	if tag == "" {
		tag = img.Tag
	}
	s := img.Repository
	if tag != "" {
		s += ":" + tag
	}
	if img.Digest != "" {
		s += "@" + img.Digest
	}
	return s
}

// HasMode reports whether m is one of the image's modes.
func (img *Image) HasMode(m modes.Mode) bool {
	for _, x := range img.Modes {
		if x == m {
			return true
		}
	}
	return false
}
