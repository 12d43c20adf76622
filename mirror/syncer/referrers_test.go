package syncer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ipfs/go-cid"
	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/manifests/pinhandle"
	"github.com/ipfs-mirror/mirror/manifests/upstream"
	"github.com/ipfs-mirror/mirror/mirror/ipfs"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/sigverify"
)

// signer makes cosign-like documents in memory (the real cosign is
// exercised by mirror/sigverify's tests and the e2e test; these keep the
// package's tests quick and binary-free).
type signer struct {
	sv  signature.SignerVerifier
	pub string // PEM file
}

func newSigner(t *testing.T, dir, file string) *signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return &signer{sv: sv, pub: p}
}

func pushBlob(t *testing.T, repo name.Repository, b []byte, mt types.MediaType) v1.Descriptor {
	t.Helper()
	l := static.NewLayer(b, mt)
	if err := remote.WriteLayer(repo, l); err != nil {
		t.Fatal(err)
	}
	h, _ := l.Digest()
	return v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(b))}
}

func putManifest(t *testing.T, ref name.Reference, m any) v1.Hash {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawDoc{b}); err != nil {
		t.Fatal(err)
	}
	h, _, _ := v1.SHA256(strings.NewReader(string(b)))
	return h
}

type rawDoc struct{ b []byte }

func (d rawDoc) RawManifest() ([]byte, error)        { return d.b, nil }
func (d rawDoc) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// sign pushes a cosign simple-signing signature of subject: on its
// sha256-<hex>.sig tag, or (oci11) as an OCI 1.1 referrer.
func (s *signer) sign(t *testing.T, repo name.Repository, subject v1.Descriptor, oci11 bool) v1.Hash {
	t.Helper()
	payload := fmt.Appendf(nil, `{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, repo.String(), subject.Digest)
	sig, err := s.sv.SignMessage(strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	layer := pushBlob(t, repo, payload, sigverify.SimpleSigningMediaType)
	layer.Annotations = map[string]string{sigverify.SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	cfgType := types.MediaType("application/vnd.oci.image.config.v1+json")
	if oci11 {
		cfgType = types.MediaType(registry.CosignArtifactType("sig"))
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: pushBlob(t, repo, []byte(`{"architecture":"","os":""}`), cfgType), Layers: []v1.Descriptor{layer}}
	if oci11 {
		m.Subject = &subject
		return putManifest(t, repo.Digest(digestOf(t, m).String()), m)
	}
	return putManifest(t, repo.Tag(registry.CosignTag(subject.Digest, "sig")), m)
}

func digestOf(t *testing.T, m any) v1.Hash {
	t.Helper()
	b, _ := json.Marshal(m)
	h, _, _ := v1.SHA256(strings.NewReader(string(b)))
	return h
}

// sbom pushes an oras-like SBOM artifact referring to subject: empty
// config (inline data), one layer.
func sbom(t *testing.T, repo name.Repository, subject v1.Descriptor) v1.Hash {
	t.Helper()
	layer := pushBlob(t, repo, []byte(`{"spdxVersion":"SPDX-2.3","name":"x"}`), rig.SBOMArtifactType)
	cfg := pushBlob(t, repo, []byte("{}"), "application/vnd.oci.empty.v1+json")
	cfg.Data = []byte("{}")
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: rig.SBOMArtifactType, Config: cfg, Layers: []v1.Descriptor{layer}, Subject: &subject}
	return putManifest(t, repo.Digest(digestOf(t, m).String()), m)
}

// TestSyncReferrers: an entry with referrers: and verify: — a signed
// index with a signature (.sig tag), an SBOM (OCI 1.1 referrer) and a
// signed platform manifest (OCI 1.1 signature): the referrers are kept in
// the upstream layout (index.json entries, blobs; the tag as
// ref.name), recorded beside their subject, carried in the CAR; a no-op
// run keeps the lockfile's bytes; artifact_types keeps what it names; an
// unsigned image, or one signed with another key, fails alone and keeps its
// previous entry; referrers: without verify needs no signature.
func TestSyncReferrers(t *testing.T) {
	ctx := context.Background()
	var c rig.Counter
	var mu sync.Mutex
	var gets []string // the GET paths
	reg := c.Counting(ggcrregistry.New(ggcrregistry.WithReferrersSupport(true), ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets = append(gets, r.URL.Path)
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	amd, arm := v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"}
	idx := rig.Index(t, false,
		rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 11, 2000, false)}}),
		rig.Image(t, rig.ImageSpec{Platform: &arm, Layers: []v1.Layer{rig.Layer(t, 12, 1000, false)}}))
	top := rig.Push(t, host+"/sig/app:1", idx)
	im, _ := idx.IndexManifest()
	raw, _ := idx.RawManifest()
	topDesc := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: top, Size: int64(len(raw))}
	repo, _ := name.NewRepository(host+"/sig/app", name.Insecure)

	r := newLayoutRun(t)
	good := newSigner(t, r.dir, "good.pub")
	newSigner(t, r.dir, "other.pub") // a key that signed nothing
	sigTop := good.sign(t, repo, topDesc, false)
	sigAmd := good.sign(t, repo, im.Manifests[0], true)
	sb := sbom(t, repo, topDesc)
	rig.Push(t, host+"/sig/unsigned:1", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 13, 500, false)}}))

	store := newCARStore(t)
	o := Options{Registry: registry.Options{Insecure: true}, PinHandle: pinhandle.Builder(store), CARDir: r.cars}
	src := host + "/sig/app:1"
	list := "  - source: " + src + "\n    referrers: true\n    verify: {cosign: {key: good.pub}}\n    platforms: [linux/amd64]\n"
	rep, got := r.sync(store, list, o)
	if got[src] != StatusNew {
		t.Fatalf("first run: %v %v", got, rep.Err())
	}
	lock, _ := lockfile.Read(r.lock)
	e, _ := lock.Lookup(src, "plain")
	sigType := registry.CosignArtifactType("sig")
	want := []lockfile.Referrer{
		{Subject: im.Manifests[0].Digest.String(), Digest: sigAmd.String(), MediaType: string(types.OCIManifestSchema1), ArtifactType: sigType},
		{Subject: top.String(), Digest: sb.String(), MediaType: string(types.OCIManifestSchema1), ArtifactType: rig.SBOMArtifactType},
		{Subject: top.String(), Digest: sigTop.String(), MediaType: string(types.OCIManifestSchema1), ArtifactType: sigType, Tag: registry.CosignTag(top, "sig")},
	}
	// lockfile order: by subject, then type, tag, digest.
	if im.Manifests[0].Digest.String() > top.String() {
		want = append(want[1:], want[0])
	}
	if fmt.Sprint(e.Referrers) != fmt.Sprint(want) {
		t.Fatalf("referrers recorded:\n%+v\nwant\n%+v", e.Referrers, want)
	}
	up, _ := ipfs.ParseCID(e.Upstream)
	ui, err := upstream.Load(ctx, store, up)
	if err != nil {
		t.Fatal(err)
	}
	if len(ui.Index) != 4 || ui.Index[0].Digest.String() != top.String() {
		t.Fatalf("upstream index.json: %+v", ui.Index)
	}
	for _, d := range ui.Index[1:] {
		doc, ok := ui.Doc(d.Digest)
		if !ok {
			t.Fatalf("referrer %s not held", d.Digest)
		}
		var m v1.Manifest
		_ = json.Unmarshal(doc.Bytes, &m)
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if _, ok := ui.Blob(digestFromHash(b.Digest)); !ok {
				t.Errorf("referrer %s: blob %s not in the layout", d.Digest, b.Digest)
			}
		}
		if d.Digest.String() == sigTop.String() && (d.Annotations["org.opencontainers.image.ref.name"] != registry.CosignTag(top, "sig") || d.ArtifactType != sigType) {
			t.Errorf("the .sig document's entry: %+v", d)
		}
		if d.Digest.String() == sb.String() && d.ArtifactType != rig.SBOMArtifactType {
			t.Errorf("the SBOM's entry: %+v", d)
		}
	}
	_, blocks := readCAR(t, filepath.Join(r.cars, CARName(src, "plain")))
	if _, err := upstream.Load(ctx, blockMap(blocks), up); err != nil {
		t.Errorf("the CAR's upstream layout: %v", err)
	}

	// No-op: verified again (the signature's GETs), nothing added, the
	// same bytes.
	before := r.lockBytes()
	c.Reset()
	rep, got = r.sync(store, list, o)
	if got[src] != StatusUnchanged || rep.BlobsAdded != 0 || string(before) != string(r.lockBytes()) {
		t.Errorf("no-op run: %v, %d blobs, lockfile changed %v", got, rep.BlobsAdded, string(before) != string(r.lockBytes()))
	}
	if c.Get("GET manifests") == 0 {
		t.Errorf("no-op run with verify: no signature read: %v", c.Snapshot())
	}

	// A new referrer since: an unchanged entry gains it (upstream, pin and
	// CAR anew); artifact_types then keeps the SBOMs only; referrers:
	// false drops them; each time the image itself is not read again.
	sb2 := sbom(t, repo, im.Manifests[0])
	mu.Lock()
	gets = nil
	mu.Unlock()
	rep, got = r.sync(store, list, o)
	lock, _ = lockfile.Read(r.lock)
	e2, _ := lock.Lookup(src, "plain")
	if got[src] != StatusUnchanged || len(e2.Referrers) != 4 || e2.Upstream == e.Upstream || e2.Pin == e.Pin || e2.CID != e.CID {
		t.Fatalf("a new referrer: %v %v, entry %+v", got, rep.Err(), e2)
	}
	if !slices.ContainsFunc(e2.Referrers, func(x lockfile.Referrer) bool { return x.Digest == sb2.String() }) {
		t.Errorf("the new SBOM is not recorded: %+v", e2.Referrers)
	}
	mu.Lock()
	if len(gets) == 0 {
		t.Error("no GET logged")
	}
	for _, p := range gets {
		if strings.HasSuffix(p, "/manifests/"+top.String()) || strings.HasSuffix(p, "/manifests/1") || strings.HasSuffix(p, "/manifests/"+im.Manifests[0].Digest.String()) {
			t.Errorf("the unchanged image was read again: GET %s", p)
		}
	}
	mu.Unlock()
	up2, _ := ipfs.ParseCID(e2.Upstream)
	if linked, err := pinhandle.UpstreamOf(ctx, store, mustCID(t, e2.Pin)); err != nil || linked != up2 {
		t.Errorf("the new pin handle links %s (%v), want %s", linked, err, up2)
	}
	roots, blocks := readCAR(t, filepath.Join(r.cars, CARName(src, "plain")))
	if len(roots) != 1 || roots[0].String() != e2.Pin {
		t.Errorf("CAR roots %v, want the new pin %s", roots, e2.Pin)
	}
	if ui, err := upstream.Load(ctx, blockMap(blocks), up2); err != nil || len(ui.Index) != 5 {
		t.Errorf("the new CAR's upstream layout: %v", err)
	}
	sbomOnly := strings.Replace(list, "referrers: true", "referrers: {artifact_types: ["+rig.SBOMArtifactType+"]}", 1)
	r.sync(store, sbomOnly, o)
	lock, _ = lockfile.Read(r.lock)
	e3, _ := lock.Lookup(src, "plain")
	if len(e3.Referrers) != 2 || e3.Referrers[0].ArtifactType != rig.SBOMArtifactType || e3.Referrers[1].ArtifactType != rig.SBOMArtifactType {
		t.Errorf("artifact_types: %+v", e3.Referrers)
	}
	ui3, err := upstream.Load(ctx, store, mustCID(t, e3.Upstream))
	if err != nil || len(ui3.Index) != 3 || len(ui3.Docs()) != 4 {
		t.Errorf("artifact_types: the layout holds %d entries, %d docs (%v); want 3 and 4", len(ui3.Index), len(ui3.Docs()), err)
	}
	before = r.lockBytes()
	r.sync(store, sbomOnly, o)
	if string(before) != string(r.lockBytes()) {
		t.Error("a second run with the same referrers changed the lockfile")
	}
	r.sync(store, strings.Replace(list, "referrers: true", "referrers: false", 1), o)
	lock, _ = lockfile.Read(r.lock)
	if e4, _ := lock.Lookup(src, "plain"); len(e4.Referrers) != 0 || e4.CID != e.CID {
		t.Errorf("referrers: false: %+v", e4)
	} else if ui4, err := upstream.Load(ctx, store, mustCID(t, e4.Upstream)); err != nil || len(ui4.Index) != 1 || len(ui4.Docs()) != 2 {
		t.Errorf("referrers: false: the layout: %v", err)
	}
	r.sync(store, list, o) // back to all four

	// Another key: failed, entry kept; with the image changed too.
	rig.Push(t, src, rig.Index(t, false, rig.Image(t, rig.ImageSpec{Platform: &amd, Layers: []v1.Layer{rig.Layer(t, 14, 2000, false)}})))
	wrong := strings.Replace(list, "good.pub", "other.pub", 1) + "  - source: " + host + "/sig/unsigned:1\n    verify: {cosign: {key: good.pub}}\n"
	rep, got = r.sync(store, wrong, o)
	if got[src] != StatusFailed || got[host+"/sig/unsigned:1"] != StatusFailed || rep.Failed != 2 {
		t.Fatalf("wrong key, unsigned: %v", got)
	}
	for _, im := range rep.Images {
		if !errors.Is(im.Err(), sigverify.ErrNotSigned) {
			t.Errorf("%s: %v, want ErrNotSigned", im.Source, im.Err())
		}
	}
	after, _ := lockfile.Read(r.lock)
	if ae, ok := after.Lookup(src, "plain"); !ok || ae.CID != e.CID || len(ae.Referrers) != 4 {
		t.Errorf("the failed entry was not kept: %+v", ae)
	}
	if _, ok := after.Lookup(host+"/sig/unsigned:1", "plain"); ok {
		t.Error("an unsigned image got an entry")
	}

	// referrers: without verify, filtered: the moved tag has no
	// signature; only the SBOM type is wanted (none there now).
	rep, got = r.sync(store, "  - source: "+src+"\n    referrers: {artifact_types: ["+rig.SBOMArtifactType+"]}\n    platforms: [linux/amd64]\n", o)
	if got[src] != StatusChanged {
		t.Fatalf("unverified: %v %v", got, rep.Err())
	}
	after, _ = lockfile.Read(r.lock)
	if ae, _ := after.Lookup(src, "plain"); len(ae.Referrers) != 0 || ae.Upstream == "" {
		t.Errorf("the moved tag's entry: %+v", ae)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := ipfs.ParseCID(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func digestFromHash(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }
