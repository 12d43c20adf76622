package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/actiontest"
	"github.com/ipfs-mirror/mirror/internal/rig"
)

// The GitHub Action (action.yml and actions/*) run step by step as a runner
// would (internal/actiontest), against a real registry and real kubo
// daemons: the one the action starts, or one given as ipfs-api.

// moduleRoot is the repository: where action.yml is.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "action.yml")); err != nil {
		t.Fatal(err)
	}
	return root
}

// ipfsOnPath returns a directory holding `ipfs` (the test's kubo), to put
// first on PATH: the action's find step then finds it and builds nothing.
func ipfsOnPath(t *testing.T) string {
	t.Helper()
	bin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "ipfs")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newActionRunner is a runner whose PATH starts with the test's ipfs, whose
// action daemons (pid files under its temp) are stopped when the test ends.
func newActionRunner(t *testing.T, workspace string) *actiontest.Runner {
	t.Helper()
	// What the action's scripts use besides bash and coreutils (.ci/tools.sh
	// installs jq).
	rig.Tool(t, "", "jq")
	rig.Tool(t, "", "curl")
	r := actiontest.New(t, workspace)
	r.BaseEnv = append(r.BaseEnv, "PATH="+ipfsOnPath(t)+":"+os.Getenv("PATH"))
	t.Cleanup(func() { stopDaemons(t, r.Temp) })
	r.AfterUse = noteBuild
	// The setup step runs `go build -o $RUNNER_TEMP/mirror-bin/mirror`;
	// Go skips the link when that file is already up to date. Seed it with
	// an earlier runner's build so each test does not link 100 MB again.
	if prev := builtMirror.Load(); prev != nil {
		dst := filepath.Join(r.Temp, "mirror-bin", "mirror")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(*prev); err == nil {
			if err := os.WriteFile(dst, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

// builtMirror is the first mirror an action's setup step built.
var builtMirror atomic.Pointer[string]

// noteBuild keeps a copy of the first binary a setup step built, next to
// the e2e binary (removed with it).
func noteBuild(res *actiontest.Result) {
	s := res.Step("setup")
	if builtMirror.Load() != nil || s == nil || s.Outcome != "success" || s.Outputs["path"] == "" {
		return
	}
	b, err := os.ReadFile(s.Outputs["path"])
	if err != nil {
		return
	}
	keep := filepath.Join(filepath.Dir(mirrorBin), "action-mirror")
	if os.WriteFile(keep, b, 0o755) == nil {
		builtMirror.CompareAndSwap(nil, &keep)
	}
}

// stopDaemons stops the daemons an action started under temp (their pid
// files): our own processes, each its own process group (setsid).
func stopDaemons(t *testing.T, temp string) {
	pids, _ := filepath.Glob(filepath.Join(temp, "*", "daemon.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			t.Logf("ipfs daemon %d killed", pid)
		}
	}
}

// twoImages pushes a multi-platform index and a single image and returns
// the mirror list naming them.
func twoImages(t *testing.T, host string, seed uint64) string {
	t.Helper()
	rig.Push(t, host+"/act/multi:1.0", rig.MultiPlatform(t, seed, 300<<10))
	rig.Push(t, host+"/act/single:1.0", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, seed+50, 200<<10, false)}}))
	return fmt.Sprintf("version: 1\nimages:\n  - source: %s/act/multi\n    tags: [\"1.0\"]\n  - source: %s/act/single\n    tags: [\"1.0\"]\n", host, host)
}

func mustOK(t *testing.T, what string, res *actiontest.Result) {
	t.Helper()
	if res.Failed {
		t.Fatalf("%s failed:\n%s", what, res.Log)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ipfsAt runs the ipfs CLI against an API address.
func ipfsAt(t *testing.T, api string, args ...string) string {
	t.Helper()
	k := &rig.Kubo{Bin: rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs"), Repo: t.TempDir()}
	out, err := k.RunErr(nil, append([]string{"--api", api}, args...)...)
	if err != nil {
		t.Fatalf("ipfs --api %s %s: %v", api, strings.Join(args, " "), err)
	}
	return out
}

// TestE2EActionSync: the root action with no ipfs-api starts a kubo daemon
// (in a private network: nothing leaves the machine), syncs two images,
// writes the summary, publishes the lockfile under an IPNS key it imports;
// a second run reuses the daemon and reports changed=false.
func TestE2EActionSync(t *testing.T) {
	root := moduleRoot(t)
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	ws := t.TempDir()
	list := twoImages(t, reg.Host, 700)
	writeList(t, ws, list)

	// An IPNS key made elsewhere, handed to the action as a secret would be.
	keyNode := rig.StartKubo(t, rig.KuboOptions{})
	keyNode.Run("key", "gen", "mirrors")
	keyFile := filepath.Join(t.TempDir(), "mirrors.key")
	keyNode.Run("key", "export", "mirrors", "--format=libp2p-protobuf-cleartext", "-o", keyFile)
	keyID := ""
	for _, line := range strings.Split(keyNode.Run("key", "list", "-l"), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "mirrors" {
			keyID = f[0]
		}
	}
	keyB64 := base64.StdEncoding.EncodeToString([]byte(readFile(t, keyFile)))

	r := newActionRunner(t, ws)
	inputs := map[string]string{
		"config":           "mirrors.yaml",
		"ipfs-profile":     "test",
		"ipfs-swarm-key":   swarmKey(),
		"jobs":             "2",
		"args":             "--retries 2",
		"publish":          "true",
		"ipns-key":         "mirrors",
		"ipns-private-key": keyB64,
		"go-cache":         "false",
	}
	start := time.Now()
	res := r.Use(root, inputs)
	mustOK(t, "first run", res)
	t.Logf("first run: %s", time.Since(start).Round(time.Millisecond))
	for _, id := range []string{"go", "setup", "ipfs-find", "ipfs", "sync", "publish"} {
		if s := res.Step(id); s == nil || s.Outcome != "success" {
			t.Fatalf("step %s did not run:\n%s", id, res.Log)
		}
	}
	if s := res.Step("ipfs-find"); s.Outputs["found"] != "true" {
		t.Errorf("ipfs-find did not find the test's ipfs: %v", s.Outputs)
	}
	o := res.Outputs
	t.Logf("outputs: %v", o)

	lockPath := filepath.Join(ws, o["lockfile"])
	if o["lockfile"] != "./mirrors.lock" {
		t.Errorf("lockfile output %q", o["lockfile"])
	}
	lock := readLock(t, lockPath)
	if len(lock.Images) != 2 {
		t.Fatalf("lockfile has %d entries", len(lock.Images))
	}
	if o["changed"] != "true" || o["exit-code"] != "0" {
		t.Errorf("changed %q exit-code %q", o["changed"], o["exit-code"])
	}
	var cids map[string]string
	if err := json.Unmarshal([]byte(o["cids"]), &cids); err != nil {
		t.Fatalf("cids output %q: %v", o["cids"], err)
	}
	if len(cids) != 2 {
		t.Errorf("cids %v", cids)
	}
	for _, e := range lock.Images {
		if cids[e.Source] != e.CID {
			t.Errorf("cids[%s] = %q, lockfile says %s", e.Source, cids[e.Source], e.CID)
		}
	}
	var rep struct {
		Images []struct{ Source, Status, CID string }
	}
	if err := json.Unmarshal([]byte(readFile(t, o["report"])), &rep); err != nil || len(rep.Images) != 2 {
		t.Fatalf("report %s: %v %+v", o["report"], err, rep)
	}
	for _, im := range rep.Images {
		if im.Status != "new" {
			t.Errorf("report: %s %s", im.Source, im.Status)
		}
	}

	// The node the action started serves the images and the lockfile.
	api := o["ipfs-api"]
	if !strings.HasPrefix(api, "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("ipfs-api output %q", api)
	}
	if v := mustRun(t, []string{"IPFS_API=" + api}, "verify", lockPath); !strings.Contains(v.stdout, "verify: 2 ok, 0 failed") {
		t.Errorf("verify on the action's node:\n%s", v.stdout)
	}
	dirCID := o["lockfile-cid"]
	if got := ipfsAt(t, api, "cat", "/ipfs/"+dirCID+"/mirrors.lock"); got != readFile(t, lockPath) {
		t.Errorf("/ipfs/%s/mirrors.lock differs from the lockfile", dirCID)
	}
	if got := ipfsAt(t, api, "cat", "/ipfs/"+dirCID+"/mirrors.yaml"); got != list {
		t.Errorf("/ipfs/%s/mirrors.yaml differs from the list", dirCID)
	}
	// Anyone can check the CID: ipfs add -r of the same two files.
	both := t.TempDir()
	_ = os.WriteFile(filepath.Join(both, "mirrors.lock"), []byte(readFile(t, lockPath)), 0o644)
	_ = os.WriteFile(filepath.Join(both, "mirrors.yaml"), []byte(list), 0o644)
	if want := strings.TrimSpace(keyNode.Run("add", "-r", "-Q", "--only-hash", "--cid-version=1", both)); dirCID != want {
		t.Errorf("lockfile-cid %s, ipfs add -r --cid-version=1 says %s", dirCID, want)
	}
	if o["ipns-name"] != keyID || keyID == "" {
		t.Errorf("ipns-name %q, the key is %q", o["ipns-name"], keyID)
	}
	if got := strings.TrimSpace(ipfsAt(t, api, "name", "resolve", "/ipns/"+o["ipns-name"])); got != "/ipfs/"+dirCID {
		t.Errorf("/ipns/%s resolves to %s, want /ipfs/%s", o["ipns-name"], got, dirCID)
	}
	if r.JobEnv()["IPFS_PATH"] != filepath.Join(r.Temp, "ipfs") {
		t.Errorf("IPFS_PATH not exported: %v", r.JobEnv())
	}

	summary := readFile(t, r.Summary)
	for _, want := range []string{"### mirror sync `mirrors.yaml`", "2 images, 0 failed", "| new | `" + reg.Host + "/act/multi:1.0` | plain |", "| new | `" + reg.Host + "/act/single:1.0` | plain |", "### mirror publish", "/ipfs/" + dirCID, "/ipns/" + keyID} {
		if !strings.Contains(summary, want) {
			t.Errorf("step summary lacks %q:\n%s", want, summary)
		}
	}

	// Second run: same list, nothing to do.
	lockBefore := readFile(t, lockPath)
	res2 := r.Use(root, inputs)
	mustOK(t, "second run", res2)
	o2 := res2.Outputs
	if o2["changed"] != "false" || o2["exit-code"] != "0" {
		t.Errorf("second run: changed %q exit-code %q", o2["changed"], o2["exit-code"])
	}
	if o2["cids"] != o["cids"] || o2["lockfile-cid"] != dirCID || o2["ipfs-api"] != api {
		t.Errorf("second run outputs differ: %v vs %v", o2, o)
	}
	if readFile(t, lockPath) != lockBefore {
		t.Error("second run rewrote the lockfile")
	}
	if !strings.Contains(res2.Step("ipfs").Log, "reusing the daemon") {
		t.Errorf("second run did not reuse the daemon:\n%s", res2.Step("ipfs").Log)
	}
	summary = readFile(t, r.Summary)
	if strings.Count(summary, "### mirror sync") != 2 || !strings.Contains(summary, "| unchanged | `"+reg.Host+"/act/multi:1.0`") {
		t.Errorf("second summary:\n%s", summary)
	}
}

// TestE2EActionEmbedded: with ipfs-node: embedded no daemon is started;
// mirror's in-process node on $RUNNER_TEMP/ipfs holds the images.
func TestE2EActionEmbedded(t *testing.T) {
	root := moduleRoot(t)
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	ws := t.TempDir()
	writeList(t, ws, twoImages(t, reg.Host, 800))
	r := newActionRunner(t, ws)
	res := r.Use(root, map[string]string{"ipfs-node": "embedded", "go-cache": "false"})
	mustOK(t, "embedded run", res)
	if s := res.Step("ipfs"); s.Outcome != "skipped" {
		t.Errorf("the daemon step ran: %s", s.Outcome)
	}
	o := res.Outputs
	if o["changed"] != "true" || o["ipfs-api"] != "" {
		t.Errorf("outputs %v", o)
	}
	lock := readLock(t, filepath.Join(ws, "mirrors.lock"))
	if len(lock.Images) != 2 {
		t.Fatalf("lockfile has %d entries", len(lock.Images))
	}
	// The repo holds them: verify with the embedded node on the same repo.
	v := mustRun(t, []string{"IPFS_PATH=" + r.JobEnv()["IPFS_PATH"]}, "verify", filepath.Join(ws, "mirrors.lock"))
	if !strings.Contains(v.stdout, "verify: 2 ok") {
		t.Errorf("verify:\n%s\n%s", v.stdout, v.stderr)
	}
	if entries, _ := filepath.Glob(filepath.Join(r.Temp, "*", "daemon.pid")); len(entries) != 0 {
		t.Errorf("a daemon was started: %v", entries)
	}
}

// TestE2EActionFailures: a config error is annotated at its file and line
// and fails the step; a failed image leaves the step red with the report,
// the lockfile (for the others) and the summary written; header values
// reach the node and never the log.
func TestE2EActionFailures(t *testing.T) {
	root := moduleRoot(t)
	k := rig.StartKubo(t, rig.KuboOptions{})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	rig.Push(t, reg.Host+"/fail/good:1.0", rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 901, 100<<10, false)}}))

	t.Run("config error", func(t *testing.T) {
		ws := t.TempDir()
		writeList(t, ws, "version: 1\nimages:\n  - source: "+reg.Host+"/fail/good\n    tagz: [\"1.0\"]\n")
		r := newActionRunner(t, ws)
		res := r.Use(root, map[string]string{"ipfs-api": k.APIAddr, "go-cache": "false", "publish": "true"})
		if !res.Failed || res.Step("sync").Outcome != "failure" || res.Step("sync").Code != ExitUsage {
			t.Fatalf("want the sync step red with exit %d:\n%s", ExitUsage, res.Log)
		}
		ann := regexp.MustCompile(`(?m)^::error file=mirrors\.yaml,line=4,col=5,title=mirrors\.yaml%3A images\[0\]\.tagz::unknown field`)
		if !ann.MatchString(res.Step("sync").Log) {
			t.Errorf("no annotation at mirrors.yaml:4:5:\n%s", res.Step("sync").Log)
		}
		o := res.Outputs
		if o["exit-code"] != "2" || o["changed"] != "false" || o["report"] != "" || o["cids"] != "{}" || o["lockfile-cid"] != "" {
			t.Errorf("outputs %v", o)
		}
		if res.Step("publish").Outcome != "skipped" {
			t.Error("publish ran after a failed sync")
		}
		if s := readFile(t, r.Summary); !strings.Contains(s, "### mirror sync `mirrors.yaml` failed (exit 2)") {
			t.Errorf("summary:\n%s", s)
		}
		if _, err := os.Stat(filepath.Join(ws, "mirrors.lock")); !os.IsNotExist(err) {
			t.Errorf("lockfile written: %v", err)
		}
	})

	t.Run("failed image", func(t *testing.T) {
		ws := t.TempDir()
		writeList(t, ws, "version: 1\nimages:\n  - source: "+reg.Host+"/fail/good\n    tags: [\"1.0\"]\n  - source: "+reg.Host+"/fail/missing\n    tags: [\"9.9\"]\n")
		r := newActionRunner(t, ws)
		res := r.Use(root, map[string]string{"ipfs-api": k.APIAddr, "go-cache": "false"})
		sync := res.Step("sync")
		if !res.Failed || sync.Outcome != "failure" || sync.Code != ExitPartial {
			t.Fatalf("want the sync step red with exit %d:\n%s", ExitPartial, res.Log)
		}
		ann := regexp.MustCompile(`(?m)^::error file=mirrors\.yaml,line=5,title=mirror sync%3A ` + regexp.QuoteMeta(strings.ReplaceAll(reg.Host, ":", "%3A")) + `/fail/missing%3A9\.9 \(plain\)::.*manifest unknown \(404\)`)
		if !ann.MatchString(sync.Log) {
			t.Errorf("no annotation at mirrors.yaml:5 for the failed image:\n%s", sync.Log)
		}
		o := res.Outputs
		if o["exit-code"] != "3" || o["changed"] != "true" || o["report"] == "" {
			t.Fatalf("outputs %v", o)
		}
		var rep struct {
			Failed int
			Images []struct{ Source, Status, Error string }
		}
		if err := json.Unmarshal([]byte(readFile(t, o["report"])), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Failed != 1 || len(rep.Images) != 2 {
			t.Errorf("report: %+v", rep)
		}
		for _, im := range rep.Images {
			if strings.HasSuffix(im.Source, "/fail/missing:9.9") != (im.Status == "failed") {
				t.Errorf("report: %s %s %s", im.Source, im.Status, im.Error)
			}
		}
		lock := readLock(t, filepath.Join(ws, "mirrors.lock"))
		if len(lock.Images) != 1 || !strings.HasSuffix(lock.Images[0].Source, "/fail/good:1.0") {
			t.Errorf("lockfile: %+v", lock.Images)
		}
		var cids map[string]string
		_ = json.Unmarshal([]byte(o["cids"]), &cids)
		if len(cids) != 1 || cids[reg.Host+"/fail/good:1.0"] != lock.Images[0].CID {
			t.Errorf("cids %v", cids)
		}
		if s := readFile(t, r.Summary); !strings.Contains(s, "❌ failed") || !strings.Contains(s, "1 failed") {
			t.Errorf("summary:\n%s", s)
		}
	})

	t.Run("header values never logged", func(t *testing.T) {
		const token = "s3cr3t-t0ken-value"
		var seen, missing atomic.Int64
		proxy := rig.KuboProxy(t, k, nil, func(r *http.Request) {
			if r.Header.Get("Authorization") == "Bearer "+token {
				seen.Add(1)
			} else {
				missing.Add(1)
			}
		})
		ws := t.TempDir()
		writeList(t, ws, "version: 1\nimages:\n  - source: "+reg.Host+"/fail/good\n    tags: [\"1.0\"]\n")
		r := newActionRunner(t, ws)
		res := r.Use(root, map[string]string{"ipfs-api": proxy, "ipfs-api-header": "Authorization: Bearer " + token, "go-cache": "false", "publish": "true"})
		mustOK(t, "run with a header", res)
		if seen.Load() == 0 || missing.Load() != 0 {
			t.Errorf("requests with the header: %d, without: %d", seen.Load(), missing.Load())
		}
		checkMasked(t, res.Log, token)

		// An unreachable API: the error names the API, not the header.
		res = r.Use(root, map[string]string{"ipfs-api": fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", rig.FreePort(t)), "ipfs-api-header": "Authorization: Bearer " + token, "go-cache": "false"})
		if !res.Failed || res.Outputs["exit-code"] != "4" {
			t.Errorf("unreachable API: exit-code %q", res.Outputs["exit-code"])
		}
		checkMasked(t, res.Log, token)
	})
}

// checkMasked: the secret appears only in ::add-mask:: commands (which the
// runner hides), and is masked at least once before any use.
func checkMasked(t *testing.T, log, secret string) {
	t.Helper()
	masked := false
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "::add-mask::") {
			masked = masked || strings.Contains(line, secret)
			continue
		}
		if strings.Contains(line, secret) {
			t.Errorf("the header value is in the log: %q", line)
		}
	}
	if !masked {
		t.Error("the header value was never masked (::add-mask::)")
	}
}

// TestE2EActionParts: the sub-actions alone — setup installs mirror, ipfs
// starts a node in a private network connected to a peer, a plain step
// syncs through IPFS_PATH, publish puts the lockfile on IPFS under an IPNS
// key, and the peer reads it over the private swarm.
func TestE2EActionParts(t *testing.T) {
	root := moduleRoot(t)
	peer := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: swarmKey()})
	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	ws := t.TempDir()
	writeList(t, ws, twoImages(t, reg.Host, 900))
	r := newActionRunner(t, ws)

	setup := r.Use(filepath.Join(root, "actions", "setup"), map[string]string{"go-cache": "false"})
	mustOK(t, "setup", setup)
	mirrorPath := setup.Outputs["path"]
	if mirrorPath != filepath.Join(r.Temp, "mirror-bin", "mirror") || setup.Outputs["version"] == "" {
		t.Errorf("setup outputs %v", setup.Outputs)
	}
	if len(r.JobPath()) == 0 || r.JobPath()[0] != filepath.Dir(mirrorPath) {
		t.Errorf("GITHUB_PATH %v", r.JobPath())
	}

	peerAddr := swarmAddr(t, peer)
	node := r.Use(filepath.Join(root, "actions", "ipfs"), map[string]string{
		"profile":   "test",
		"swarm-key": swarmKey(),
		"peers":     peerAddr,
		"config":    "Datastore.StorageMax=\"1GB\"",
		"cache":     "false",
	})
	mustOK(t, "ipfs", node)
	o := node.Outputs
	if o["api"] == "" || o["peer-id"] == "" || o["pid"] == "" || o["ipfs-path"] != filepath.Join(r.Temp, "ipfs") || !strings.Contains(o["addresses"], "/p2p/"+o["peer-id"]) {
		t.Fatalf("ipfs outputs %v", o)
	}
	if !strings.Contains(peer.Run("swarm", "peers"), o["peer-id"]) {
		t.Errorf("the peer is not connected to the action's node")
	}
	if got := strings.TrimSpace(ipfsAt(t, o["api"], "config", "Datastore.StorageMax")); got != "1GB" {
		t.Errorf("config input not applied: StorageMax %q", got)
	}

	// A plain step: mirror on PATH finds the daemon through IPFS_PATH.
	env := []string{"IPFS_PATH=" + r.JobEnv()["IPFS_PATH"]}
	mustRun(t, env, "sync", filepath.Join(ws, "mirrors.yaml"))
	ipfsAt(t, o["api"], "key", "gen", "lockfiles")

	pub := r.Use(filepath.Join(root, "actions", "publish"), map[string]string{
		"lockfile": "mirrors.lock",
		"list":     "mirrors.yaml",
		"ipns-key": "lockfiles",
	})
	mustOK(t, "publish", pub)
	po := pub.Outputs
	var files []struct {
		Name, CID string
		Size      int64
	}
	if err := json.Unmarshal([]byte(po["files"]), &files); err != nil || len(files) != 2 || files[0].Name != "mirrors.lock" || files[1].Name != "mirrors.yaml" {
		t.Errorf("files output %q: %v", po["files"], err)
	}
	if po["cid"] == "" || !strings.HasPrefix(po["ipns-name"], "k51") {
		t.Fatalf("publish outputs %v", po)
	}
	// The peer fetches the published lockfile from the action's node.
	if got := peer.Run("cat", "/ipfs/"+po["cid"]+"/mirrors.lock"); got != readFile(t, filepath.Join(ws, "mirrors.lock")) {
		t.Error("the peer read another lockfile")
	}
	if pins := ipfsAt(t, o["api"], "pin", "ls", "--type=recursive", po["cid"]); !strings.Contains(pins, po["cid"]) {
		t.Errorf("published directory not pinned: %s", pins)
	}
}

// swarmAddr is a kubo's loopback TCP address with /p2p/ID, from `ipfs id`.
func swarmAddr(t *testing.T, k *rig.Kubo) string {
	t.Helper()
	var id struct {
		ID        string
		Addresses []string
	}
	if err := json.Unmarshal([]byte(k.Run("id")), &id); err != nil {
		t.Fatal(err)
	}
	for _, a := range id.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.Contains(a, "/p2p/") {
			return a
		}
	}
	t.Fatalf("no loopback TCP address in %v", id.Addresses)
	return ""
}
