package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
)

// The pre-pass digests must be those of the bytes Compressed and
// Uncompressed stream, every time.
func TestSynthLayerDigests(t *testing.T) {
	for _, s := range []synthSpec{
		{Seed: 1, Size: 300 << 10, FileSize: 100 << 10},
		{Seed: 2, Size: 300<<10 + 7, FileSize: 64 << 10, Text: true, Gzip: 1},
		{Seed: 3, Size: 0},
	} {
		l, err := newSynthLayer(s)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			rc, _ := l.Compressed()
			blob, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if got := sum(blob); got != l.digest.Hex || int64(len(blob)) != l.size {
				t.Fatalf("%+v: compressed digest %s size %d, pre-pass %s %d", s, got, len(blob), l.digest.Hex, l.size)
			}
			rc, _ = l.Uncompressed()
			raw, _ := io.ReadAll(rc)
			if got := sum(raw); got != l.diffID.Hex || int64(len(raw)) != l.tarSize {
				t.Fatalf("%+v: diffID mismatch", s)
			}
			if s.Gzip != 0 {
				zr, err := gzip.NewReader(bytes.NewReader(blob))
				if err != nil {
					t.Fatal(err)
				}
				un, _ := io.ReadAll(zr)
				if !bytes.Equal(un, raw) {
					t.Fatalf("%+v: gunzip(blob) != tar", s)
				}
			}
			// A valid tar holding Size payload bytes.
			tr := tar.NewReader(bytes.NewReader(raw))
			var n int64
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n += h.Size
			}
			if n != s.Size {
				t.Fatalf("%+v: tar holds %d bytes", s, n)
			}
		}
	}
}

func TestTextCompresses(t *testing.T) {
	l, err := newSynthLayer(synthSpec{Seed: 9, Size: 1 << 20, Text: true, Gzip: 6})
	if err != nil {
		t.Fatal(err)
	}
	if ratio := float64(l.tarSize) / float64(l.size); ratio < 2 {
		t.Fatalf("text layer compresses only %.2f:1", ratio)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
