package main

import (
	"os"
	"strings"

	"github.com/ipfs-mirror/mirror/internal/redact"
)

// secretsOf collects the secrets a command line and its environment carry,
// before parsing (so that even a parse error cannot print them): the
// password of an --ipfs-api / $IPFS_API URL or of a --gateway /
// $MIRROR_GATEWAY URL, --ipfs-api-header values and --key passwords. The
// CLI masks them in every output.
func secretsOf(args []string, getenv func(string) string) []string {
	out := redact.URLPassword(getenv("IPFS_API"))
	for _, u := range strings.Split(getenv("MIRROR_GATEWAY"), ",") {
		out = append(out, redact.URLPassword(u)...)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "--ipfs-api", "--ipfs-address", "--ipfs-api-header", "--key", "--gateway":
		default:
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				break
			}
			i++
			val = args[i]
		}
		switch name {
		case "--ipfs-api", "--ipfs-address":
			out = append(out, redact.URLPassword(val)...)
		case "--gateway":
			for _, u := range strings.Split(val, ",") {
				out = append(out, redact.URLPassword(u)...)
			}
		case "--ipfs-api-header":
			if _, v, ok := strings.Cut(val, ":"); ok {
				out = append(out, strings.TrimSpace(v))
			}
		case "--key":
			out = append(out, keyPassword(val)...)
		}
	}
	return out
}

// keyPassword is the password part of a --key FILE:PASSWORD, as
// convert.ParseKey reads it (a file= password is a path, not a secret).
func keyPassword(s string) []string {
	if _, err := os.Stat(s); err == nil {
		return nil
	}
	_, pw, ok := strings.Cut(s, ":")
	if !ok || strings.HasPrefix(pw, "file=") {
		return nil
	}
	return []string{pw, strings.TrimPrefix(pw, "pass=")}
}

// addSecrets masks more secrets from now on (e.g. the ipfs.api of a list).
func (g *Globals) addSecrets(s ...string) {
	if g.secrets != nil {
		g.secrets.Add(s...)
	}
}

// mask masks the known secrets in s (for the files the CLI writes).
func (g *Globals) mask(s string) string { return g.secrets.String(s) }
