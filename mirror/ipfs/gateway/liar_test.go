package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/gateway"
)

// TestLyingGateway puts a gateway that lies in front of kubo's, first in
// the list: every lie is caught, the good gateway completes the read, the
// log names the liar. Alone, the liar gives an error that names it and the
// CID, and never a wrong byte before that error.
func TestLyingGateway(t *testing.T) {
	k := rig.StartKubo(t, rig.KuboOptions{})
	data := payload(21, 3<<20+12345)
	c := add(t, k, data, false)
	ctx := context.Background()
	for _, tc := range []struct {
		fetch gateway.Fetch
		lie   string
		want  error // alone
	}{
		{gateway.FetchBlocks, "flipraw", ipfs.ErrIntegrity},
		{gateway.FetchBlocks, "truncraw", ipfs.ErrIntegrity},
		{gateway.FetchBlocks, "404raw", ipfs.ErrNotFound},
		{gateway.FetchCAR, "flipraw", ipfs.ErrIntegrity},
		{gateway.FetchCAR, "flip", ipfs.ErrIntegrity},
		{gateway.FetchCAR, "drop", ipfs.ErrNotFound},
		{gateway.FetchCAR, "truncate", ipfs.ErrNotFound},
		{gateway.FetchCAR, "junk", ipfs.ErrNotFound},
	} {
		t.Run(fetchName(tc.fetch)+"/"+tc.lie, func(t *testing.T) {
			liar := newProxy(t, k.GatewayURL())
			liar.lie = tc.lie
			s, lb := newStore(t, gateway.Options{Gateways: []string{liar.URL, k.GatewayURL()}, SegmentSize: 1 << 20, Fetch: tc.fetch})
			got, err := cat(ctx, s, c, 0, -1)
			if err != nil {
				t.Fatalf("with a good gateway behind the liar: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("wrong bytes accepted")
			}
			if liar.lies.Load() == 0 {
				t.Fatal("the liar told no lie: the test tests nothing")
			}
			log := lb.String()
			t.Logf("log: %.400s", log)
			if !strings.Contains(log, liar.URL) || (tc.lie != "404raw" && !strings.Contains(log, "bad content")) {
				t.Errorf("the log does not name the liar %s:\n%s", liar.URL, log)
			}
			// A range, too.
			got, err = cat(ctx, s, c, 1<<20+5, 2<<20)
			if err != nil || !bytes.Equal(got, data[1<<20+5:3<<20+5]) {
				t.Fatalf("range: %v", err)
			}

			alone, _ := newStore(t, gateway.Options{Gateways: []string{liar.URL}, SegmentSize: 1 << 20, Fetch: tc.fetch})
			rc, err := alone.Cat(ctx, c, 0, -1)
			if err == nil {
				var got []byte
				got, err = io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, data[:len(got)]) {
					t.Fatal("the liar alone: wrong bytes accepted")
				}
			}
			if err == nil {
				t.Fatal("the liar alone: no error")
			}
			t.Logf("the liar alone: %v", err)
			if !errors.Is(err, tc.want) {
				t.Errorf("the liar alone: %v, want %v", err, tc.want)
			}
			for _, want := range []string{c.String(), liar.URL} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %s: %v", want, err)
				}
			}
		})
	}
}

func fetchName(f gateway.Fetch) string {
	if f == gateway.FetchCAR {
		return "car"
	}
	return "blocks"
}
