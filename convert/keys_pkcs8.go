package convert

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// errKeyPassword marks a missing or wrong password for an encrypted key.
var errKeyPassword = errors.New("wrong or missing password")

// pemPrivateKey reads a PEM private key of any of the forms OpenSSL writes
// and returns it as unencrypted PKCS#8 DER, the form ocicrypt parses first:
// PKCS#8 ("PRIVATE KEY", OpenSSL 3's default), encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY", PBES2 with PBKDF2 and AES-CBC, what `openssl
// genpkey -aes256` writes), PKCS#1 ("RSA PRIVATE KEY") and SEC 1 ("EC
// PRIVATE KEY"), the last two also with the legacy Proc-Type encryption.
// ok is false when b is not a PEM private key (DER, JWK and the rest are
// left to ocicrypt); err wraps errKeyPassword when the password is missing
// or wrong.
func pemPrivateKey(b, password []byte) (der []byte, ok bool, err error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, false, nil
	}
	body := block.Bytes
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		if len(password) == 0 {
			return nil, true, fmt.Errorf("encrypted PKCS#8 key: %w", errKeyPassword)
		}
		if body, err = decryptPKCS8(body, password); err != nil {
			return nil, true, err
		}
		fallthrough
	case "PRIVATE KEY":
		if _, err := x509.ParsePKCS8PrivateKey(body); err != nil {
			return nil, true, fmt.Errorf("PKCS#8 key: %v", err)
		}
		return body, true, nil
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
		if x509.IsEncryptedPEMBlock(block) { //nolint:staticcheck // the legacy form OpenSSL still writes with -traditional
			if len(password) == 0 {
				return nil, true, fmt.Errorf("encrypted %s: %w", block.Type, errKeyPassword)
			}
			if body, err = x509.DecryptPEMBlock(block, password); err != nil { //nolint:staticcheck // as above
				return nil, true, fmt.Errorf("encrypted %s: %w", block.Type, errKeyPassword)
			}
		}
		var key any
		if block.Type == "RSA PRIVATE KEY" {
			key, err = x509.ParsePKCS1PrivateKey(body)
		} else {
			key, err = x509.ParseECPrivateKey(body)
		}
		if err != nil {
			return nil, true, fmt.Errorf("%s: %v", block.Type, err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		return der, true, err
	}
	return nil, false, nil
}

// PKCS#5 v2 (RFC 8018) identifiers.
var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

type encryptedPrivateKeyInfo struct {
	Algo pkix.AlgorithmIdentifier
	Data []byte
}

type pbes2Params struct {
	KDF    pkix.AlgorithmIdentifier
	Cipher pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       []byte
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// maxPBKDF2Iterations bounds the work a key file can ask for (OpenSSL
// writes 2048; a hostile file must not hang the run).
const maxPBKDF2Iterations = 10_000_000

// decryptPKCS8 decrypts an EncryptedPrivateKeyInfo (RFC 5958) encrypted
// with PBES2: PBKDF2 (HMAC-SHA1/224/256/384/512) and AES-128/192/256-CBC,
// which is what OpenSSL 1.1 and 3 write. Other schemes (PBES1, scrypt,
// DES) are refused with a clear error.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("encrypted PKCS#8 key: malformed")
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted PKCS#8 key: unsupported scheme %s (want PBES2: openssl genpkey/pkcs8 -v2 aes256)", info.Algo.Algorithm)
	}
	var p pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &p); err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 key: malformed PBES2 parameters")
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("encrypted PKCS#8 key: unsupported key derivation %s (want PBKDF2)", p.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &kdf); err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 key: malformed PBKDF2 parameters")
	}
	if kdf.Iterations < 1 || kdf.Iterations > maxPBKDF2Iterations {
		return nil, fmt.Errorf("encrypted PKCS#8 key: PBKDF2 iteration count %d out of range", kdf.Iterations)
	}
	var h func() hash.Hash
	switch prf := kdf.PRF.Algorithm; {
	case len(prf) == 0, prf.Equal(oidHMACSHA1):
		h = sha1.New
	case prf.Equal(oidHMACSHA224):
		h = sha256.New224
	case prf.Equal(oidHMACSHA256):
		h = sha256.New
	case prf.Equal(oidHMACSHA384):
		h = sha512.New384
	case prf.Equal(oidHMACSHA512):
		h = sha512.New
	default:
		return nil, fmt.Errorf("encrypted PKCS#8 key: unsupported PBKDF2 PRF %s", prf)
	}
	var keyLen int
	switch c := p.Cipher.Algorithm; {
	case c.Equal(oidAES128CBC):
		keyLen = 16
	case c.Equal(oidAES192CBC):
		keyLen = 24
	case c.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, fmt.Errorf("encrypted PKCS#8 key: unsupported cipher %s (want AES-CBC)", c)
	}
	if kdf.KeyLength != 0 && kdf.KeyLength != keyLen {
		return nil, fmt.Errorf("encrypted PKCS#8 key: key length %d does not fit the cipher", kdf.KeyLength)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(p.Cipher.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("encrypted PKCS#8 key: malformed AES-CBC IV")
	}
	if len(info.Data) == 0 || len(info.Data)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("encrypted PKCS#8 key: encrypted data is not whole AES blocks")
	}
	key, err := pbkdf2.Key(h, string(password), kdf.Salt, kdf.Iterations, keyLen)
	if err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 key: %v", err)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(info.Data))
	cipher.NewCBCDecrypter(blk, iv).CryptBlocks(out, info.Data)
	// PKCS#7 padding: a wrong password almost always breaks it; when it
	// does not, the PKCS#8 parse that follows fails.
	n := int(out[len(out)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, fmt.Errorf("encrypted PKCS#8 key: %w", errKeyPassword)
	}
	for _, c := range out[len(out)-n:] {
		if int(c) != n {
			return nil, fmt.Errorf("encrypted PKCS#8 key: %w", errKeyPassword)
		}
	}
	out = out[:len(out)-n]
	if _, err := x509.ParsePKCS8PrivateKey(out); err != nil {
		return nil, fmt.Errorf("encrypted PKCS#8 key: %w", errKeyPassword)
	}
	return out, nil
}
