package rig

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OpenSSLKey is a private key written by the openssl CLI, and its public key.
type OpenSSLKey struct {
	Name     string // e.g. "rsa-pkcs8-encrypted"
	Priv     string // the private key file
	Pub      string // its public key (PKIX PEM)
	Password string // "" when the key is not encrypted
	// Arg is how --key names it: Priv, or Priv:Password.
	Arg string
}

// OpenSSLKeys generates RSA and EC private keys with the real openssl CLI
// in each form it writes: PKCS#8 (OpenSSL 3's default), encrypted PKCS#8
// (genpkey -aes256), PKCS#1 / SEC 1 ("traditional"), and legacy-encrypted
// PKCS#1. password is used for the encrypted ones.
func OpenSSLKeys(t testing.TB, dir, password string) []OpenSSLKey {
	t.Helper()
	openssl := Tool(t, "MIRROR_OPENSSL", "openssl")
	pass := "pass:" + password
	specs := []struct {
		name string
		enc  bool
		args []string
	}{
		{"rsa-pkcs8", false, []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}},
		{"rsa-pkcs8-encrypted", true, []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-aes256", "-pass", pass}},
		{"rsa-pkcs1", false, []string{"genrsa", "-traditional", "2048"}},
		{"rsa-pkcs1-encrypted", true, []string{"genrsa", "-traditional", "-aes256", "-passout", pass, "2048"}},
		{"ec-pkcs8", false, []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}},
		{"ec-pkcs8-encrypted", true, []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-128-cbc", "-pass", pass}},
		{"ec-sec1", false, []string{"ecparam", "-name", "prime256v1", "-genkey", "-noout"}},
	}
	var out []OpenSSLKey
	for _, s := range specs {
		k := OpenSSLKey{Name: s.name, Priv: filepath.Join(dir, s.name+".pem"), Pub: filepath.Join(dir, s.name+".pub.pem")}
		k.Arg = k.Priv
		if s.enc {
			k.Password = password
			k.Arg += ":" + password
		}
		run := func(args ...string) {
			if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, b)
			}
		}
		run(append([]string{s.args[0], "-out", k.Priv}, s.args[1:]...)...)
		pub := []string{"pkey", "-in", k.Priv, "-pubout", "-out", k.Pub}
		if s.enc {
			pub = append(pub, "-passin", pass)
		}
		run(pub...)
		out = append(out, k)
	}
	return out
}
