// Package modes names the forms an image is mirrored in: the values of
// mirrors.yaml `modes:`, `mirror push --mode` and the lockfile's mode
// field, and the tag suffix mirror serve names an image's other forms by.
// It has no dependencies, so that every layer (the lockfile too) can use
// it; the conversions themselves are convert.ForMode. (The package is
// modes, not mode, so that it does not collide with the many variables
// called mode.)
package modes

import "strings"

// Mode is a form an image is mirrored in. Each selected image is stored
// once per mode, under its own root CID.
type Mode string

// The modes.
const (
	Plain     Mode = "plain"     // layers as the source has them
	Estargz   Mode = "estargz"   // layers converted to eStargz (lazy pulling)
	Encrypted Mode = "encrypted" // layers encrypted with ocicrypt
)

// All lists the modes in their canonical order.
func All() []Mode { return []Mode{Plain, Estargz, Encrypted} }

// Valid reports whether m is one of All.
func (m Mode) Valid() bool {
	switch m {
	case Plain, Estargz, Encrypted:
		return true
	}
	return false
}

func names() []string {
	all := All()
	out := make([]string, len(all))
	for i, m := range all {
		out[i] = string(m)
	}
	return out
}

// Enum is the modes comma-separated ("plain,estargz,encrypted"), as a kong
// enum takes them.
func Enum() string { return strings.Join(names(), ",") }

// Want is the modes as messages list them: "plain, estargz or encrypted".
func Want() string {
	n := names()
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

// Tag is the tag the image of a source tag is served under in mode m: the
// tag itself for plain (and for "", a lockfile entry without a mode),
// TAG-MODE otherwise (3.20-estargz, 3.20-encrypted).
func (m Mode) Tag(tag string) string {
	if m == "" || m == Plain {
		return tag
	}
	return tag + "-" + string(m)
}

// Label is how reports and progress name an image in mode m: the source,
// with the mode in parentheses unless it is plain (or "").
func (m Mode) Label(source string) string {
	if m == "" || m == Plain {
		return source
	}
	return source + " (" + string(m) + ")"
}
