package convert

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// Keys as the openssl CLI writes them: OpenSSL 3's default PKCS#8, encrypted
// PKCS#8, PKCS#1 and SEC 1. Before, encrypted PKCS#8 and SEC 1 were refused
// as "not a private key".
func TestParseKeyOpenSSL(t *testing.T) {
	keys := rig.OpenSSLKeys(t, t.TempDir(), "s3cret-pw")
	src := threeLayerImage(t)
	var recips []string
	for _, k := range keys {
		recips = append(recips, "jwe:"+k.Pub)
	}
	enc := mustEncrypt(t, src, EncryptOptions{Recipients: recips, TempDir: t.TempDir()})
	for _, k := range keys {
		t.Run(k.Name, func(t *testing.T) {
			pk, err := ParseKey(k.Arg)
			if err != nil || pk.Kind != KeyPrivate {
				t.Fatalf("ParseKey: %v (%s)", err, pk.Kind)
			}
			sameLayers(t, src, mustDecrypt(t, enc, k.Arg))
			if k.Password == "" {
				return
			}
			for _, bad := range []string{k.Priv, k.Priv + ":wrong"} {
				_, err := ParseKey(bad)
				if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), "password") {
					t.Errorf("ParseKey(%s): %v, want a password error", bad, err)
				}
				if strings.Contains(err.Error(), "wrong") && strings.Contains(err.Error(), ":wrong") {
					t.Errorf("the password is in the error: %v", err)
				}
			}
		})
	}
}
