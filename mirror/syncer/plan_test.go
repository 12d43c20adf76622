package syncer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs-mirror/mirror/mirror/config"
	"github.com/ipfs-mirror/mirror/mirror/lockfile"
	"github.com/ipfs-mirror/mirror/mirror/registry"
	"github.com/ipfs-mirror/mirror/mirror/verify"
)

// The planner's tests: a mirror list, a lockfile and fakes for the
// registries and the node; no binary, no daemon, no registry.

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	dP = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

	cid1 = "bafybeiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	cid2 = "bafybeibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

	cfg1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
)

// fakeSources answers from maps; a reference it does not know is an error.
type fakeSources struct {
	mu      sync.Mutex
	tags    map[string][]string // repository → tags
	digests map[string]string   // reference → digest
	pushed  map[string]string   // push target → digest
	asked   []string            // every question, in order
}

func (f *fakeSources) ask(q string) {
	f.mu.Lock()
	f.asked = append(f.asked, q)
	f.mu.Unlock()
}

func (f *fakeSources) Tags(_ context.Context, repo string) ([]string, error) {
	f.ask("tags " + repo)
	if t, ok := f.tags[repo]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("listing %s: 503 Service Unavailable", repo)
}

func (f *fakeSources) Digest(_ context.Context, ref registry.Ref) (string, error) {
	s := ref.Ref.String()
	f.ask("head " + s)
	if d, ok := f.digests[s]; ok {
		return d, nil
	}
	return "", fmt.Errorf("reading %s: manifest unknown (404)", s)
}

func (f *fakeSources) PushDigest(_ context.Context, ref string) (string, error) {
	f.ask("head push " + ref)
	if d, ok := f.pushed[ref]; ok {
		return d, nil
	}
	return "", fmt.Errorf("reading %s: manifest unknown (404)", ref)
}

// fakeNode holds the roots of held; configs gives each stored tree's
// configs (a root not there has a tree that cannot be read), wrong the
// roots whose tree is another image.
type fakeNode struct {
	held    map[string]bool
	holdErr map[string]error
	configs map[string][]string
	wrong   map[string]bool
}

func (n *fakeNode) Holds(_ context.Context, root string) (bool, error) {
	if err := n.holdErr[root]; err != nil {
		return false, err
	}
	return n.held[root], nil
}

func (n *fakeNode) Binding(_ context.Context, e lockfile.Entry) ([]string, error) {
	if n.wrong[e.CID] {
		return nil, fmt.Errorf("%s: %w", e.CID, verify.ErrWrongImage)
	}
	if c, ok := n.configs[e.CID]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%s: block not found", e.CID)
}

// result is a whole plan, as walk hands it out.
type result struct {
	steps      map[string]step // "source mode" → step
	listFailed map[string]error
	removed    []string // "source mode"
}

func plan(t *testing.T, list string, lock *lockfile.File, src *fakeSources, node *fakeNode, only string) result {
	t.Helper()
	cfg, err := config.Parse("mirrors.yaml", []byte("version: 1\n"+list))
	if err != nil {
		t.Fatal(err)
	}
	if lock == nil {
		lock = lockfile.New()
	}
	p := &planner{cfg: cfg, lock: &lockView{f: lock}, src: src, held: node}
	if only != "" {
		p.only = regexp.MustCompile(only)
	}
	res := result{steps: map[string]step{}, listFailed: map[string]error{}}
	var mu sync.Mutex
	removed := p.walk(context.Background(), 1, func(img *config.Image, err error) {
		res.listFailed[img.Source] = err
	}, func(ctx context.Context, img *config.Image, tag string) {
		tp := p.planTag(ctx, img, tag)
		mu.Lock()
		defer mu.Unlock()
		for _, st := range tp.Steps {
			res.steps[st.Source+" "+string(st.Mode)] = st
		}
	})
	for _, e := range removed {
		res.removed = append(res.removed, e.Source+" "+e.Mode)
	}
	return res
}

// entry is a lock entry of source in plain mode.
func entry(source, digest, cid string, configs ...string) lockfile.Entry {
	return lockfile.Entry{Source: source, Mode: "plain", Digest: digest, Platforms: []string{}, CID: cid, Configs: configs}
}

func lockOf(es ...lockfile.Entry) *lockfile.File {
	f := lockfile.New()
	for _, e := range es {
		f.Put(e)
	}
	return f
}

// node holds cid1 and cid2, both trees readable.
func node() *fakeNode {
	return &fakeNode{
		held:    map[string]bool{cid1: true, cid2: true},
		holdErr: map[string]error{},
		configs: map[string][]string{cid1: {cfg1}, cid2: {cfg1}},
		wrong:   map[string]bool{},
	}
}

func TestPlanStatuses(t *testing.T) {
	const app = "reg.example/app:1.0"
	list := "images:\n  - source: " + app + "\n"
	for _, tc := range []struct {
		name string
		list string
		lock *lockfile.File
		node func(*fakeNode)
		want Status
	}{
		{"new", list, nil, nil, StatusNew},
		{"changed: the source moved", list, lockOf(entry(app, dB, cid1)), nil, StatusChanged},
		{"changed: the platforms changed", "images:\n  - source: " + app + "\n    platforms: [linux/amd64]\n", lockOf(entry(app, dA, cid1)), nil, StatusChanged},
		{"changed: a push target was added", "images:\n  - source: " + app + "\n    push: [\"reg.example/ipfs/app:{{.Tag}}\"]\n", lockOf(entry(app, dA, cid1)), nil, StatusChanged},
		{"unchanged", list, lockOf(entry(app, dA, cid1, cfg1)), nil, StatusUnchanged},
		{"restored: the node no longer holds the root", list, lockOf(entry(app, dA, cid1)), func(n *fakeNode) { n.held[cid1] = false }, StatusRestored},
		{"restored: the root is held but its tree cannot be read", list, lockOf(entry(app, dA, cid1)), func(n *fakeNode) { delete(n.configs, cid1) }, StatusRestored},
		{"repaired: the root holds another image", list, lockOf(entry(app, dA, cid1)), func(n *fakeNode) { n.wrong[cid1] = true }, StatusRepaired},
		{"failed: the node cannot say whether it holds the root", list, lockOf(entry(app, dA, cid1)), func(n *fakeNode) { n.holdErr[cid1] = errors.New("ipfs pin ls: connection refused") }, StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSources{digests: map[string]string{app: dA}}
			n := node()
			if tc.node != nil {
				tc.node(n)
			}
			res := plan(t, tc.list, tc.lock, src, n, "")
			st, ok := res.steps[app+" plain"]
			if !ok {
				t.Fatalf("no step for %s: %+v", app, res.steps)
			}
			if st.Action != tc.want {
				t.Fatalf("action %s (err %v), want %s", st.Action, st.Err, tc.want)
			}
			if st.Digest != dA {
				t.Errorf("digest %q, want the source's %s", st.Digest, dA)
			}
			if (tc.lock == nil) != (st.Prev == nil) {
				t.Errorf("previous entry %+v", st.Prev)
			}
			if tc.want == StatusUnchanged && !slices.Equal(st.Configs, []string{cfg1}) {
				t.Errorf("configs %v, want those of the stored tree", st.Configs)
			}
			if tc.want == StatusFailed && !strings.Contains(fmt.Sprint(st.Err), "connection refused") {
				t.Errorf("error %v, want the node's", st.Err)
			}
			if len(res.removed) != 0 {
				t.Errorf("removed %v", res.removed)
			}
		})
	}
}

// An unchanged entry with re-push targets stays unchanged while every
// target still has the digest recorded; a target that moved (or cannot be
// read) makes it changed.
func TestPlanPushTargets(t *testing.T) {
	const app, target = "reg.example/app:1.0", "reg.example/ipfs/app:1.0"
	list := "images:\n  - source: " + app + "\n    push: [\"reg.example/ipfs/app:{{.Tag}}\"]\n"
	e := entry(app, dA, cid1)
	e.Push = []lockfile.PushTarget{{Ref: target, Digest: dP}}
	for _, tc := range []struct {
		name   string
		pushed map[string]string
		want   Status
	}{
		{"current", map[string]string{target: dP}, StatusUnchanged},
		{"moved", map[string]string{target: dB}, StatusChanged},
		{"gone", map[string]string{}, StatusChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSources{digests: map[string]string{app: dA}, pushed: tc.pushed}
			res := plan(t, list, lockOf(e), src, node(), "")
			if got := res.steps[app+" plain"].Action; got != tc.want {
				t.Errorf("action %s, want %s", got, tc.want)
			}
		})
	}
}

// An immutable tag locked in every mode, held and bound, is not asked of
// the registry at all; otherwise it is planned like any other.
func TestPlanImmutable(t *testing.T) {
	const app = "reg.example/app:1.0"
	list := "immutable_tags: '^1\\.0$'\nimages:\n  - source: " + app + "\n"
	t.Run("locked and held", func(t *testing.T) {
		src := &fakeSources{}
		res := plan(t, list, lockOf(entry(app, dA, cid1)), src, node(), "")
		st := res.steps[app+" plain"]
		if st.Action != StatusImmutable || st.Prev == nil || st.Prev.CID != cid1 {
			t.Fatalf("step %+v, want immutable with the entry", st)
		}
		if len(src.asked) != 0 {
			t.Errorf("asked the registry %v", src.asked)
		}
	})
	t.Run("locked, the node lost it", func(t *testing.T) {
		src := &fakeSources{digests: map[string]string{app: dA}}
		n := node()
		n.held[cid1] = false
		res := plan(t, list, lockOf(entry(app, dA, cid1)), src, n, "")
		if got := res.steps[app+" plain"].Action; got != StatusRestored {
			t.Errorf("action %s, want restored", got)
		}
	})
	t.Run("locked, the node cannot say", func(t *testing.T) {
		src := &fakeSources{}
		n := node()
		n.holdErr[cid1] = errors.New("ipfs pin ls: 500 Internal Server Error")
		res := plan(t, list, lockOf(entry(app, dA, cid1)), src, n, "")
		st := res.steps[app+" plain"]
		if st.Action != StatusFailed || st.Prev == nil || !strings.Contains(fmt.Sprint(st.Err), "500") {
			t.Errorf("step %+v, want failed with the node's error and the entry", st)
		}
		if len(src.asked) != 0 {
			t.Errorf("asked the registry %v", src.asked)
		}
	})
	t.Run("locked in one mode of two", func(t *testing.T) {
		src := &fakeSources{digests: map[string]string{app: dA}}
		res := plan(t, "immutable_tags: '^1\\.0$'\nimages:\n  - source: "+app+"\n    modes: [plain, estargz]\n", lockOf(entry(app, dA, cid1, cfg1)), src, node(), "")
		if got := res.steps[app+" plain"].Action; got != StatusUnchanged {
			t.Errorf("plain: %s, want unchanged", got)
		}
		if got := res.steps[app+" estargz"].Action; got != StatusNew {
			t.Errorf("estargz: %s, want new", got)
		}
		if !slices.Equal(src.asked, []string{"head " + app}) {
			t.Errorf("asked %v, want one HEAD", src.asked)
		}
	})
	t.Run("a mutable tag", func(t *testing.T) {
		src := &fakeSources{digests: map[string]string{"reg.example/app:latest": dA}}
		res := plan(t, "immutable_tags: '^1\\.0$'\nimages:\n  - source: reg.example/app:latest\n", lockOf(entry("reg.example/app:latest", dA, cid1)), src, node(), "")
		if got := res.steps["reg.example/app:latest plain"].Action; got != StatusUnchanged || len(src.asked) != 1 {
			t.Errorf("action %s after %v, want unchanged after one HEAD", got, src.asked)
		}
	})
}

// Entries the list no longer selects are removed; those of an entry whose
// tags could not be listed, or of a run limited by --only, stay.
func TestPlanRemoved(t *testing.T) {
	lock := lockOf(
		entry("reg.example/app:1.0", dA, cid1),
		entry("reg.example/gone:1.0", dA, cid1),   // no longer in the list
		entry("reg.example/tagged:0.9", dA, cid2), // its tag no longer selected
		entry("reg.example/tagged:1.0", dA, cid2),
	)
	list := "images:\n  - source: reg.example/app:1.0\n  - source: reg.example/tagged\n    tags: {allow: ['^1\\.']}\n"
	src := &fakeSources{
		tags:    map[string][]string{"reg.example/tagged": {"0.9", "1.0", "1.1"}},
		digests: map[string]string{"reg.example/app:1.0": dA, "reg.example/tagged:1.0": dA, "reg.example/tagged:1.1": dB},
	}
	res := plan(t, list, lock, src, node(), "")
	slices.Sort(res.removed)
	if want := []string{"reg.example/gone:1.0 plain", "reg.example/tagged:0.9 plain"}; !slices.Equal(res.removed, want) {
		t.Errorf("removed %v, want %v", res.removed, want)
	}
	for k, want := range map[string]Status{
		"reg.example/app:1.0 plain":    StatusUnchanged,
		"reg.example/tagged:1.0 plain": StatusUnchanged,
		"reg.example/tagged:1.1 plain": StatusNew,
	} {
		if got := res.steps[k].Action; got != want {
			t.Errorf("%s: %s, want %s", k, got, want)
		}
	}
	if len(res.steps) != 3 {
		t.Errorf("steps %v", res.steps)
	}

	t.Run("tag listing failed", func(t *testing.T) {
		src := &fakeSources{digests: src.digests}
		res := plan(t, list, lock, src, node(), "")
		if err := res.listFailed["reg.example/tagged"]; err == nil || !strings.Contains(err.Error(), "listing tags: ") {
			t.Errorf("listing error %v", err)
		}
		if !slices.Equal(res.removed, []string{"reg.example/gone:1.0 plain"}) {
			t.Errorf("removed %v: the entries of an entry whose listing failed must stay", res.removed)
		}
	})
	t.Run("only", func(t *testing.T) {
		res := plan(t, list, lock, src, node(), "app")
		if len(res.removed) != 0 || len(res.steps) != 1 {
			t.Errorf("--only app: removed %v, steps %v", res.removed, res.steps)
		}
	})
}

// A failure keeps the previous entry: the planner never changes the
// lockfile, a failed step carries the entry it had, and a failed image is
// still selected (not removed).
func TestPlanFailuresKeepTheEntry(t *testing.T) {
	e := entry("reg.example/app:1.0", dA, cid1)
	lock := lockOf(e, entry("reg.example/ok:1.0", dA, cid2))
	before := string(lock.Marshal())
	src := &fakeSources{digests: map[string]string{"reg.example/ok:1.0": dB}} // app:1.0 gives a 404
	res := plan(t, "images:\n  - source: reg.example/app:1.0\n  - source: reg.example/ok:1.0\n", lock, src, node(), "")
	st := res.steps["reg.example/app:1.0 plain"]
	if st.Action != StatusFailed || st.Err == nil || !strings.Contains(st.Err.Error(), "404") {
		t.Fatalf("step %+v, want failed with the 404", st)
	}
	if st.Prev == nil || !reflect.DeepEqual(*st.Prev, e) {
		t.Errorf("previous entry %+v, want %+v", st.Prev, e)
	}
	if got := res.steps["reg.example/ok:1.0 plain"].Action; got != StatusChanged {
		t.Errorf("the other image: %s, want changed", got)
	}
	if len(res.removed) != 0 {
		t.Errorf("removed %v", res.removed)
	}
	if after := string(lock.Marshal()); after != before {
		t.Errorf("the planner changed the lockfile:\n%s\n%s", before, after)
	}

	t.Run("a push target the template cannot make", func(t *testing.T) {
		// The template passes the list's check (sample tag 1.0.0) but gives
		// a tag longer than 128 characters for one tag: that tag fails,
		// with the source digest read and its entry kept; the other tag
		// does not.
		long := strings.Repeat("v", 70)
		lock := lockOf(entry("reg.example/app:"+long, dA, cid1))
		src := &fakeSources{digests: map[string]string{"reg.example/app:" + long: dA, "reg.example/app:1.0": dB}}
		res := plan(t, "images:\n  - source: reg.example/app\n    tags: [\"1.0\", \""+long+"\"]\n    push: [\"reg.example/ipfs/app:{{.Tag}}{{.Tag}}\"]\n", lock, src, node(), "")
		st := res.steps["reg.example/app:"+long+" plain"]
		if st.Action != StatusFailed || st.Prev == nil || st.Digest != dA || !strings.Contains(fmt.Sprint(st.Err), "128 characters") {
			t.Errorf("step %+v, want failed with the digest, the entry and the template's error", st)
		}
		if got := res.steps["reg.example/app:1.0 plain"].Action; got != StatusNew {
			t.Errorf("the other tag: %s, want new", got)
		}
	})
}
