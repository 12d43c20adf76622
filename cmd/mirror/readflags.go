package main

import (
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/ipfs-mirror/mirror/internal/ui"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// ReadFlags bound each wait for IPFS under the commands that read an image
// (pull, inspect): a bitswap fetch that stops making progress is asked
// again where it stopped instead of waited on forever (ipfs.Patient).
// serve has its own flags (nerdctl's names and defaults).
type ReadFlags struct {
	ReadTimeout  time.Duration `default:"1m" env:"MIRROR_READ_TIMEOUT" help:"Longest wait for IPFS to answer a read, then for each next bytes of it (not a bound on a whole transfer); a read that times out is asked again where it stopped. 0: wait as long as --timeout allows."`
	ReadRetries  int           `default:"5" env:"MIRROR_READ_RETRIES" help:"Times a read that timed out is asked again before the command fails (exit 4); the count starts over whenever bytes arrive."`
	StallTimeout time.Duration `default:"2s" env:"MIRROR_STALL_TIMEOUT" help:"Paces the waits within --read-timeout, none counted in --read-retries: once an IPFS read is answering, a wait this long for its next bytes resumes it where it stopped (a new bitswap session); a read without first bytes is asked again after 4 times this, then twice as long each time. Grows on a link that is slow rather than stalled. 0: off."`
}

func (f ReadFlags) check() error {
	if f.ReadTimeout < 0 || f.ReadRetries < 0 || f.StallTimeout < 0 {
		return usageError{fmt.Errorf("--read-timeout, --read-retries and --stall-timeout must not be negative")}
	}
	return nil
}

// patient returns store with the read timeout and retries, each retry said
// on pr (a line on stderr; a "warning" object with --json).
func (f ReadFlags) patient(store ipfs.Store, pr ui.Printer) ipfs.Store {
	of := 1 + f.ReadRetries
	return ipfs.Patient(store, ipfs.PatientOptions{Timeout: f.ReadTimeout, Retries: f.ReadRetries, StallTimeout: f.StallTimeout,
		OnRetry: func(c cid.Cid, off int64, try int) {
			pr.Message("warning", fmt.Sprintf("warning: no bytes from IPFS for %s reading %s at offset %d; asking again (try %d of %d)", f.ReadTimeout, c, off, try, of),
				map[string]any{"cid": c.String(), "offset": off, "try": try, "of": of, "readTimeout": f.ReadTimeout.String(), "waited": f.ReadTimeout.String()})
		},
		OnStall: func(c cid.Cid, off int64, waited time.Duration) {
			pr.Message("stall", fmt.Sprintf("IPFS gave no bytes for %s reading %s at offset %d; asking again there (not a retry)", waited.Round(time.Millisecond), c, off),
				map[string]any{"cid": c.String(), "offset": off, "waited": waited.String()})
		}})
}
