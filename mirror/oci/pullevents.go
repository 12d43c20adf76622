package oci

import (
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/ipfs-mirror/mirror/manifests"
)

// pullObserver turns the layer reads of Pull's writers (layout, tarball,
// remote) into manifests events: it wraps the image so that each layer's
// Compressed stream reports its bytes. Layers a writer never read (a
// registry that already had them) are reported as existing at the end.
type pullObserver struct {
	emit  func(manifests.Event)
	image string

	mu     sync.Mutex
	layers map[v1.Hash]*pullBlob // every layer a writer listed, by digest
	order  []v1.Hash
}

type pullBlob struct {
	size  int64
	mt    string
	state int // 0 not read, 1 reading, 2 done
}

func newPullObserver(emit func(manifests.Event), image string) *pullObserver {
	return &pullObserver{emit: emit, image: image, layers: map[v1.Hash]*pullBlob{}}
}

// wrap returns node with observed layers; node unchanged without a callback.
func (o *pullObserver) wrap(node manifests.Node) manifests.Node {
	if o.emit == nil {
		return node
	}
	switch n := node.(type) {
	case v1.Image:
		return &obsImage{Image: n, o: o}
	case v1.ImageIndex:
		return &obsIndex{idx: n, o: o}
	}
	return node
}

// finish reports the layers never read as existing, then the image. A
// registry that had the whole image is not even asked for its layers: then
// every layer of node exists.
func (o *pullObserver) finish(node manifests.Node, top v1.Hash) {
	if o.emit == nil {
		return
	}
	o.mu.Lock()
	none := len(o.order) == 0
	o.mu.Unlock()
	if none {
		listLayers(node, 0)
	}
	o.mu.Lock()
	var rest []manifests.Event
	for _, h := range o.order {
		b := o.layers[h]
		if b.state != 2 {
			b.state = 2
			rest = append(rest, manifests.Event{Type: manifests.BlobDone, Image: o.image, Digest: digest.Digest(h.String()), MediaType: b.mt, Size: b.size, Done: b.size, State: manifests.StateExists})
		}
	}
	o.mu.Unlock()
	for _, e := range rest {
		o.emit(e)
	}
	o.emit(manifests.Event{Type: manifests.ImageDone, Image: o.image, Digest: digest.Digest(top.String())})
}

// listLayers lists the layers of every image of node (wrapped: that
// registers them); nothing is read but the in-memory manifests.
func listLayers(node manifests.Node, depth int) {
	switch n := node.(type) {
	case v1.Image:
		_, _ = n.Layers()
	case v1.ImageIndex:
		im, err := n.IndexManifest()
		if err != nil || depth > 4 {
			return
		}
		for _, m := range im.Manifests {
			switch {
			case m.MediaType.IsImage():
				if img, err := n.Image(m.Digest); err == nil {
					listLayers(img, depth+1)
				}
			case m.MediaType.IsIndex():
				if child, err := n.ImageIndex(m.Digest); err == nil {
					listLayers(child, depth+1)
				}
			}
		}
	}
}

func (o *pullObserver) layer(l v1.Layer) v1.Layer {
	h, err := l.Digest()
	if err != nil {
		return l
	}
	size, _ := l.Size()
	mt, _ := l.MediaType()
	o.mu.Lock()
	if _, ok := o.layers[h]; !ok {
		o.layers[h] = &pullBlob{size: size, mt: manifests.DockerToOCI(string(mt))}
		o.order = append(o.order, h)
	}
	o.mu.Unlock()
	if d, ok := l.(interface {
		Descriptor() (*v1.Descriptor, error)
	}); ok {
		return &obsDescLayer{obsLayer: obsLayer{Layer: l, o: o, h: h}, desc: d.Descriptor}
	}
	return &obsLayer{Layer: l, o: o, h: h}
}

// start claims the first read of h; later reads (retries, a second
// platform) report nothing.
func (o *pullObserver) start(h v1.Hash) (*pullBlob, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.layers[h]
	if b == nil || b.state != 0 {
		return nil, false
	}
	b.state = 1
	return b, true
}

func (o *pullObserver) done(h v1.Hash) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if b := o.layers[h]; b != nil && b.state == 1 {
		b.state = 2
		return true
	}
	return false
}

type obsImage struct {
	v1.Image
	o *pullObserver
}

func (i *obsImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for j, l := range ls {
		out[j] = i.o.layer(l)
	}
	return out, nil
}

func (i *obsImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.o.layer(l), nil
}

type obsIndex struct {
	idx
	o *pullObserver
}

// idx names the embedded index (an embedded v1.ImageIndex would clash with
// its own ImageIndex method).
type idx = v1.ImageIndex

func (x *obsIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := x.idx.Image(h)
	if err != nil {
		return nil, err
	}
	return &obsImage{Image: img, o: x.o}, nil
}

func (x *obsIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	child, err := x.idx.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &obsIndex{idx: child, o: x.o}, nil
}

// Layer passes an index entry that is neither an image nor an index (an
// artifact, a blob of an unknown type) through to the wrapped index, which
// reads it verified: go-containerregistry's writers look for this method,
// and without it the layout writer is handed a nil reader.
func (x *obsIndex) Layer(h v1.Hash) (v1.Layer, error) {
	wl, ok := x.idx.(interface {
		Layer(v1.Hash) (v1.Layer, error)
	})
	if !ok {
		return nil, fmt.Errorf("index entry %s: the index cannot read it", h)
	}
	return wl.Layer(h)
}

type obsLayer struct {
	v1.Layer
	o *pullObserver
	h v1.Hash
}

type obsDescLayer struct {
	obsLayer
	desc func() (*v1.Descriptor, error)
}

func (l *obsDescLayer) Descriptor() (*v1.Descriptor, error) { return l.desc() }

func (l *obsLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	b, first := l.o.start(l.h)
	if !first {
		return rc, nil
	}
	d := digest.Digest(l.h.String())
	l.o.emit(manifests.Event{Type: manifests.BlobStart, Image: l.o.image, Digest: d, MediaType: b.mt, Size: b.size})
	return &obsReader{ReadCloser: rc, l: l, d: d, b: b}, nil
}

// obsReader reports progress every MiB and the blob done when its last
// byte (or EOF) is read.
type obsReader struct {
	io.ReadCloser
	l       *obsLayer
	d       digest.Digest
	b       *pullBlob
	n, last int64
}

func (r *obsReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	o := r.l.o
	switch {
	case err == io.EOF || (r.b.size > 0 && r.n >= r.b.size):
		if o.done(r.l.h) {
			o.emit(manifests.Event{Type: manifests.BlobDone, Image: o.image, Digest: r.d, MediaType: r.b.mt, Size: r.b.size, Done: r.n, State: manifests.StateAdded})
		}
	case r.n-r.last >= 1<<20:
		r.last = r.n
		o.emit(manifests.Event{Type: manifests.BlobProgress, Image: o.image, Digest: r.d, MediaType: r.b.mt, Size: r.b.size, Done: r.n})
	}
	return n, err
}

// Close lets a retry of an unfinished read report again.
func (r *obsReader) Close() error {
	o := r.l.o
	o.mu.Lock()
	if r.b.state == 1 {
		r.b.state = 0
	}
	o.mu.Unlock()
	return r.ReadCloser.Close()
}
