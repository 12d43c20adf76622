package main

import (
	"github.com/ipfs-mirror/mirror/mirror"
)

// convertFor returns the converter of the non-plain modes (eStargz,
// encrypted); nil until they are wired in.
func convertFor(g *Globals) mirror.Converter {
	return nil
}
