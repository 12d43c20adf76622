package main

import (
	"context"
	"fmt"

	"github.com/alecthomas/kong"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/convert"
	"github.com/ipfs-mirror/mirror/convert/modes"
	"github.com/ipfs-mirror/mirror/manifests"
	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/syncer"
)

// ModeFlags are push's conversion flags (nerdctl push --estargz, image
// encrypt --recipient/--layer).
type ModeFlags struct {
	Mode                    string   `default:"${mode_default}" enum:"${modes}" help:"plain (as is), estargz (lazy pulling) or encrypted (ocicrypt)."`
	Estargz                 bool     `help:"Alias of --mode estargz (nerdctl push --estargz)."`
	Recipient               []string `placeholder:"jwe:PUB.pem" help:"Encryption recipient: jwe:PUB.pem, pkcs7:CERT.pem or pgp:IDENTITY (repeatable; implies --mode encrypted)."`
	Layer                   []int    `placeholder:"N" help:"Encrypt only these layers (negative counts from the top, as nerdctl); default all."`
	EstargzCompressionLevel int      `placeholder:"1-9" help:"eStargz gzip level (default 9)."`
	EstargzPrioritizedFiles string   `type:"existingfile" placeholder:"FILE" help:"Files (one per line) to put first in eStargz layers (what the snapshotter prefetches)."`
	EstargzChunkSize        int      `placeholder:"BYTES" help:"eStargz chunk size (default 4 MiB)."`
}

// modeVars are the values of --mode, from package modes.
func modeVars() kong.Vars {
	return kong.Vars{"modes": modes.Enum(), "mode_default": string(modes.Plain)}
}

// converter returns the image conversion the flags ask for (nil: plain).
func (f *ModeFlags) converter() (manifests.ImageConverter, modes.Mode, error) {
	mode := modes.Mode(f.Mode)
	if f.Estargz {
		if mode == modes.Encrypted {
			return nil, "", usageError{fmt.Errorf("--estargz with --mode encrypted: %w", convert.ErrExclusiveModes)}
		}
		mode = modes.Estargz
	}
	if len(f.Recipient) > 0 {
		if mode == modes.Estargz {
			return nil, "", usageError{fmt.Errorf("--recipient with eStargz: %w (an encrypted blob cannot be lazily pulled)", convert.ErrExclusiveModes)}
		}
		mode = modes.Encrypted
	}
	if mode == modes.Plain {
		return nil, mode, nil
	}
	opts := convert.Options{
		Estargz: convert.EstargzOptions{CompressionLevel: f.EstargzCompressionLevel, ChunkSize: f.EstargzChunkSize},
		Encrypt: convert.EncryptOptions{Recipients: f.Recipient, Layers: f.Layer},
	}
	if f.EstargzPrioritizedFiles != "" {
		files, err := convert.LoadPrioritizedFiles(f.EstargzPrioritizedFiles)
		if err != nil {
			return nil, "", usageError{err}
		}
		opts.Estargz.PrioritizedFiles = files
	}
	c, err := convert.ForMode(mode, opts)
	if err != nil {
		return nil, "", usageError{err}
	}
	return c, mode, nil
}

// convertFor gives sync the conversions of an entry's modes.
func convertFor(_ *Globals) syncer.Converter {
	return func(img *config.Image, mode modes.Mode) (manifests.ImageConverter, error) {
		var opts convert.Options
		if img.Estargz != nil {
			opts.Estargz.CompressionLevel = img.Estargz.CompressionLevel
			if img.Estargz.PrioritizedFiles != "" {
				files, err := convert.LoadPrioritizedFiles(img.Estargz.PrioritizedFiles)
				if err != nil {
					return nil, err
				}
				opts.Estargz.PrioritizedFiles = files
			}
		}
		if img.Encrypt != nil {
			opts.Encrypt.Recipients = img.Encrypt.Recipients
		}
		c, err := convert.ForMode(mode, opts)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// decrypter returns pull's decryption (nil without keys: an encrypted image
// is copied as it is, like nerdctl pull --unpack=false).
func decrypter(keys []string) (manifests.ImageConverter, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	for _, k := range keys {
		if _, err := convert.ParseKey(k); err != nil {
			return nil, usageError{err}
		}
	}
	return func(ctx context.Context, img v1.Image) (v1.Image, error) {
		return convert.Decrypt(ctx, img, convert.DecryptOptions{Keys: keys})
	}, nil
}
