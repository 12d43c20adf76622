package convert

import "errors"

// Sentinel errors. Every error returned by this package that falls in one of
// these classes wraps the sentinel, so callers (the CLI maps them to exit codes)
// test with errors.Is.
var (
	// ErrExclusiveModes: eStargz and encryption cannot be combined in one output
	// (an encrypted blob cannot be lazily pulled), as in nerdctl.
	ErrExclusiveModes = errors.New("estargz and encryption are exclusive")

	// ErrUnknownMode: ForMode was given a mode other than plain, estargz or encrypted.
	ErrUnknownMode = errors.New("unknown conversion mode")

	// ErrUnsupportedMediaType: a layer's media type names a layer format the
	// conversion cannot handle (e.g. application/vnd.oci.image.layer.v1.tar+foo).
	ErrUnsupportedMediaType = errors.New("unsupported layer media type")

	// ErrInvalidEstargz: a layer claims to be eStargz (it carries the
	// containerd.io/snapshot/stargz/toc.digest annotation) but its footer or TOC
	// is corrupted or does not match the annotation.
	ErrInvalidEstargz = errors.New("invalid eStargz layer")

	// ErrUnsupportedRecipient: a recipient string has an unknown scheme.
	ErrUnsupportedRecipient = errors.New("unsupported recipient scheme")

	// ErrInvalidKey: a recipient or key file could be read but holds no usable
	// key (not a public key, not a certificate, not a private key, wrong password).
	ErrInvalidKey = errors.New("invalid key")

	// ErrNoRecipients: Encrypt was called without any recipient.
	ErrNoRecipients = errors.New("no encryption recipients")

	// ErrNothingToEncrypt: the layer selection matched no encryptable layer.
	ErrNothingToEncrypt = errors.New("no layer selected for encryption")

	// ErrNoDecryptionKey: an encrypted layer was found but no key given can
	// even be tried on it (no key at all, or only keys of other schemes).
	ErrNoDecryptionKey = errors.New("no decryption key for encrypted layer")

	// ErrWrongKey: keys of the layer's scheme were given but none of them
	// unwraps the layer key.
	ErrWrongKey = errors.New("none of the decryption keys fits the encrypted layer")

	// ErrEncryptedLayer: the uncompressed content of an encrypted layer was
	// requested; decrypt the image first.
	ErrEncryptedLayer = errors.New("layer is encrypted")

	// ErrClosed: the converted image was used after Close.
	ErrClosed = errors.New("converted image is closed")
)
