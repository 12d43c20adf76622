// Package car is an ipfs.Store that needs no IPFS node: it builds the same
// UnixFS DAGs as `ipfs add` with the format's fixed settings and writes
// every block to a CAR file (CARv1), which `ipfs dag import` (or any pinning
// service that takes CARs) loads later.
//
// Blocks are streamed to a temporary file next to the output as they are
// produced, so memory stays bounded whatever the layer size; a block already
// written is never written twice. The CAR header names the roots, which are
// known only at the end: Finish writes the header and then copies the blocks
// after it (an in-kernel copy on Linux), and renames the result into place.
package car

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	chunker "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/multiformats/go-multihash"

	"github.com/ipfs-mirror/mirror/mirror/ipfs"
)

// Store writes blocks to a CAR file. It is safe for concurrent use.
type Store struct {
	path string

	mu       sync.Mutex
	tmp      *os.File      // block sections (CARv1 framing), no header
	w        *bufio.Writer // buffers writes to tmp
	size     int64         // bytes of sections written (buffered included)
	flushed  int64         // bytes of sections on disk in tmp
	index    map[cid.Cid]span
	pins     []cid.Cid
	finished bool
	closed   bool
}

// span locates a block's bytes in tmp.
type span struct {
	off int64
	n   int
}

var (
	_ ipfs.Store       = (*Store)(nil)
	_ ipfs.Describer   = (*Store)(nil)
	_ ipfs.BlockGetter = (*Store)(nil)
)

// New prepares a CAR file at path. Nothing appears at path until Finish;
// blocks go to a temporary file in the same directory meanwhile. Close
// removes the temporary file (and, before Finish, abandons the CAR).
func New(path string) (*Store, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".blocks-*")
	if err != nil {
		return nil, fmt.Errorf("car %s: %w", path, err)
	}
	return &Store{
		path:  path,
		tmp:   tmp,
		w:     bufio.NewWriterSize(tmp, 1<<20),
		index: map[cid.Cid]span{},
	}, nil
}

// Path is where Finish writes the CAR.
func (s *Store) Path() string { return s.path }

// Describe implements ipfs.Describer.
func (s *Store) Describe() string { return "CAR file " + s.path }

// prefix is the CID prefix kubo uses for `ipfs add --cid-version=1
// --hash=sha2-256` (dag.PrefixForCidVersion(1) with the hash set).
func prefix() cid.Prefix {
	p, _ := dag.PrefixForCidVersion(ipfs.CIDVersion)
	p.MhType = multihash.SHA2_256
	p.MhLength = -1
	return p
}

// Add implements ipfs.Store: it chunks r and builds the UnixFS file DAG as
// kubo's `ipfs add` does with the format's settings (boxo's balanced
// importer, fixed-size chunks, raw leaves, CIDv1, sha2-256, 174 links per
// node), writing each block as it is made. Nothing is pinned: a CAR has no
// pins, only roots (see Finish).
func (s *Store) Add(ctx context.Context, r io.Reader) (cid.Cid, error) {
	if err := s.usable(); err != nil {
		return cid.Undef, err
	}
	spl := chunker.NewSizeSplitter(ipfs.ContextReader(ctx, r), ipfs.ChunkSize)
	params := helpers.DagBuilderParams{
		Dagserv:    &dagWriter{s: s},
		RawLeaves:  ipfs.RawLeaves,
		Maxlinks:   ipfs.MaxFileLinks,
		CidBuilder: prefix(),
	}
	db, err := params.New(spl)
	if err != nil {
		return cid.Undef, fmt.Errorf("car add: %w", err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		if ctx.Err() != nil {
			return cid.Undef, ctx.Err()
		}
		return cid.Undef, fmt.Errorf("car add: %w", err)
	}
	return nd.Cid(), nil
}

// PutBlock implements ipfs.Store.
func (s *Store) PutBlock(ctx context.Context, codec uint64, data []byte) (cid.Cid, error) {
	if err := ctx.Err(); err != nil {
		return cid.Undef, err
	}
	switch codec {
	case cid.Raw:
	case cid.DagProtobuf:
		if _, err := dag.DecodeProtobuf(data); err != nil {
			return cid.Undef, fmt.Errorf("car block put: not a dag-pb block: %w", err)
		}
	default:
		return cid.Undef, fmt.Errorf("car block put: unsupported codec %#x", codec)
	}
	c, err := cid.V1Builder{Codec: codec, MhType: multihash.SHA2_256}.Sum(data)
	if err != nil {
		return cid.Undef, err
	}
	if err := s.put(c, data); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

// Pin implements ipfs.Store. A CAR has no pins; Pin only checks that the
// DAG's root block was written and records c (see Pins). Name the CAR's
// roots with Finish.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.index[ipfs.V1(c)]; !ok {
		return fmt.Errorf("car pin %s: %w", c, ipfs.ErrNotFound)
	}
	s.pins = append(s.pins, c)
	return nil
}

// Pins returns the CIDs passed to Pin, in call order.
func (s *Store) Pins() []cid.Cid {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cid.Cid(nil), s.pins...)
}

// Has reports whether the block c names was written.
func (s *Store) Has(c cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.index[ipfs.V1(c)]
	return ok
}

// Len returns the number of distinct blocks written and their total size
// in bytes (block data only, without CAR framing).
func (s *Store) Len() (blocks int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.index {
		bytes += int64(sp.n)
	}
	return len(s.index), bytes
}

// GetBlock implements ipfs.BlockGetter: the bytes of the block c names,
// as written.
func (s *Store) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	sp, ok := s.index[ipfs.V1(c)]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("car block %s: %w", c, ipfs.ErrNotFound)
	}
	if sp.off+int64(sp.n) > s.flushed {
		if err := s.w.Flush(); err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("car %s: %w", s.path, err)
		}
		s.flushed = s.size
	}
	f := s.tmp
	s.mu.Unlock()
	buf := make([]byte, sp.n)
	if _, err := f.ReadAt(buf, sp.off); err != nil {
		return nil, fmt.Errorf("car block %s: reading %s: %w", c, f.Name(), err)
	}
	return buf, nil
}

// Cat implements ipfs.Store: it reads a UnixFS file back from the blocks
// written so far (the writer reads JSON it wrote this way).
func (s *Store) Cat(ctx context.Context, c cid.Cid, offset, length int64) (io.ReadCloser, error) {
	ng := &dagWriter{s: s}
	nd, err := ng.Get(ctx, c)
	if ipld.IsNotFound(err) {
		return nil, fmt.Errorf("car cat %s: %w", c, ipfs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("car cat %s: %w", c, err)
	}
	dr, err := uio.NewDagReader(ctx, nd, ng)
	if err != nil {
		return nil, fmt.Errorf("car cat %s: %w", c, err)
	}
	if offset > 0 {
		if _, err := dr.Seek(offset, io.SeekStart); err != nil {
			dr.Close()
			return nil, fmt.Errorf("car cat %s: seeking to %d: %w", c, offset, err)
		}
	}
	if length < 0 {
		return dr, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(dr, length), dr}, nil
}

// Finish writes the CAR file: a CARv1 header naming roots, then every block
// written, in the order they were written. `ipfs dag import` pins the roots
// (recursively), so name the DAG that links everything (the image's pin
// handle) to keep a whole image. Every root must have been written. After
// Finish the store still answers Cat, GetBlock and Has until Close.
func (s *Store) Finish(roots ...cid.Cid) error {
	if len(roots) == 0 {
		return ErrNoRoots
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.finished {
		return ErrFinished
	}
	for _, r := range roots {
		if _, ok := s.index[ipfs.V1(r)]; !ok {
			return fmt.Errorf("car root %s: %w: no such block was written", r, ipfs.ErrNotFound)
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	s.flushed = s.size

	hdr, err := header(roots)
	if err != nil {
		return err
	}
	out, err := os.CreateTemp(filepath.Dir(s.path), "."+filepath.Base(s.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if _, err := out.Write(hdr); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	// io.Copy between two *os.File uses copy_file_range where it can.
	if _, err := io.Copy(out, io.NewSectionReader(s.tmp, 0, s.size)); err != nil {
		return fmt.Errorf("car %s: copying blocks: %w", s.path, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	if err := os.Chmod(out.Name(), 0o644); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	if err := os.Rename(out.Name(), s.path); err != nil {
		return fmt.Errorf("car %s: %w", s.path, err)
	}
	ok = true
	s.finished = true
	return nil
}

// Close implements ipfs.Store: it removes the temporary block file. A CAR
// not finished by then is abandoned.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.tmp.Close()
	if rerr := os.Remove(s.tmp.Name()); err == nil {
		err = rerr
	}
	return err
}

func (s *Store) usable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.finished:
		return ErrFinished
	}
	return nil
}

// put appends one CARv1 section (uvarint length, CID bytes, data) unless
// the block is there already.
func (s *Store) put(c cid.Cid, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.finished:
		return ErrFinished
	}
	if _, ok := s.index[c]; ok {
		return nil
	}
	cb := c.Bytes()
	var lb [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(lb[:], uint64(len(cb)+len(data)))
	for _, p := range [][]byte{lb[:n], cb, data} {
		if _, err := s.w.Write(p); err != nil {
			return fmt.Errorf("car %s: writing block %s: %w", s.path, c, err)
		}
	}
	off := s.size + int64(n+len(cb))
	s.size = off + int64(len(data))
	s.index[c] = span{off: off, n: len(data)}
	return nil
}

// header encodes the CARv1 header: uvarint length, then the dag-cbor map
// {"roots": [...], "version": 1}.
func header(roots []cid.Cid) ([]byte, error) {
	nd, err := qp.BuildMap(basicnode.Prototype.Map, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "roots", qp.List(int64(len(roots)), func(la datamodel.ListAssembler) {
			for _, r := range roots {
				qp.ListEntry(la, qp.Link(cidlink.Link{Cid: r}))
			}
		}))
		qp.MapEntry(ma, "version", qp.Int(1))
	})
	if err != nil {
		return nil, fmt.Errorf("car header: %w", err)
	}
	var body bytes.Buffer
	if err := dagcbor.Encode(nd, &body); err != nil {
		return nil, fmt.Errorf("car header: %w", err)
	}
	out := binary.AppendUvarint(nil, uint64(body.Len()))
	return append(out, body.Bytes()...), nil
}

// dagWriter is the ipld.DAGService the importer writes through, and the
// NodeGetter Cat reads through.
type dagWriter struct{ s *Store }

func (d *dagWriter) Add(_ context.Context, nd ipld.Node) error {
	return d.s.put(nd.Cid(), nd.RawData())
}

func (d *dagWriter) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := d.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (d *dagWriter) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	data, err := d.s.GetBlock(ctx, c)
	if err != nil {
		if errors.Is(err, ipfs.ErrNotFound) {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		return nil, err
	}
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return nil, err
	}
	switch c.Type() {
	case cid.Raw:
		return dag.DecodeRawBlock(b)
	case cid.DagProtobuf:
		return dag.DecodeProtobufBlock(b)
	}
	return nil, fmt.Errorf("block %s: unsupported codec %#x", c, c.Type())
}

func (d *dagWriter) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	go func() {
		defer close(out)
		for _, c := range cs {
			nd, err := d.Get(ctx, c)
			select {
			case out <- &ipld.NodeOption{Node: nd, Err: err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (d *dagWriter) Remove(context.Context, cid.Cid) error {
	return errors.New("car: blocks cannot be removed")
}

func (d *dagWriter) RemoveMany(context.Context, []cid.Cid) error {
	return errors.New("car: blocks cannot be removed")
}
