package convert

import (
	"compress/gzip"
	"errors"
	"io"
	"sync"

	"github.com/containerd/stargz-snapshotter/estargz"
)

// pooledGzip is estargz's gzip compression with the gzip writers reused.
// estargz opens a new gzip member (a new gzip.Writer, ~800 KiB of deflate
// state at level 9) for every file and chunk; on layers of many small files
// allocating them dominated the time and the memory. gzip.Writer.Reset
// gives a writer that writes exactly what a new one would, so the output is
// byte-identical to estargz's default compression (tested).
type pooledGzip struct {
	*estargz.GzipCompressor
	estargz.GzipDecompressor
	level int
}

var gzipPools [gzip.BestCompression + 1]sync.Pool // by level (1..9)

func newPooledGzip(level int) *pooledGzip {
	return &pooledGzip{GzipCompressor: estargz.NewGzipCompressorWithLevel(level), level: level}
}

func (p *pooledGzip) Writer(w io.Writer) (estargz.WriteFlushCloser, error) {
	if p.level < 1 || p.level > gzip.BestCompression {
		return gzip.NewWriterLevel(w, p.level)
	}
	if zw, ok := gzipPools[p.level].Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return &pooledGzipWriter{zw: zw, level: p.level}, nil
	}
	zw, err := gzip.NewWriterLevel(w, p.level)
	if err != nil {
		return nil, err
	}
	return &pooledGzipWriter{zw: zw, level: p.level}, nil
}

var errWriterClosed = errors.New("gzip member already closed")

// pooledGzipWriter returns its gzip.Writer to the pool on Close and refuses
// use after that (the writer may already be someone else's).
type pooledGzipWriter struct {
	zw    *gzip.Writer
	level int
}

func (w *pooledGzipWriter) Write(p []byte) (int, error) {
	if w.zw == nil {
		return 0, errWriterClosed
	}
	return w.zw.Write(p)
}

func (w *pooledGzipWriter) Flush() error {
	if w.zw == nil {
		return errWriterClosed
	}
	return w.zw.Flush()
}

func (w *pooledGzipWriter) Close() error {
	if w.zw == nil {
		return errWriterClosed
	}
	err := w.zw.Close()
	if err == nil {
		w.zw.Reset(io.Discard) // drop the reference to the destination
		gzipPools[w.level].Put(w.zw)
	}
	w.zw = nil
	return err
}
