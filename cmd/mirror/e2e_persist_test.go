package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// Persistence through an IPFS Cluster (docs/persistence.md): real
// ipfs-cluster-service v1.1.0 peers (built outside our module by
// .ci/tools.sh) over real kubo daemons, all on 127.0.0.1 in one private
// swarm.

// clusterPeer is one ipfs-cluster-service process and its kubo.
type clusterPeer struct {
	Kubo      *rig.Kubo
	Dir       string
	ID        string
	Listen    string // cluster swarm multiaddr with /p2p/ID
	RESTAPI   string // multiaddr of the REST API (ipfs-cluster-ctl --host)
	ProxyAPI  string // multiaddr of the kubo-compatible proxy API
	proc      *rig.Proc
	ctl, serv string
}

func (p *clusterPeer) Log() string {
	if p.proc == nil {
		return ""
	}
	return p.proc.Log()
}

// Ctl runs ipfs-cluster-ctl against this peer's REST API.
func (p *clusterPeer) Ctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.ctl, append([]string{"--host", p.RESTAPI}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ipfs-cluster-ctl %s: %v: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func (p *clusterPeer) stop() {
	if p.proc != nil {
		p.proc.Stop(20 * time.Second)
	}
}

// clusterSecret is the cluster's shared secret (32 bytes, hex).
const clusterSecret = "5b4a2f0c11e9d8c7b6a5948372615f4e3d2c1b0a99887766554433221100ffee"

// startCluster starts one cluster peer per kubo (crdt consensus, every peer
// trusted, replication factor repl), the first as the bootstrap of the
// others, and waits until every peer sees all of them.
func startCluster(t *testing.T, kubos []*rig.Kubo, repl int) []*clusterPeer {
	t.Helper()
	serv := rig.Tool(t, "MIRROR_CLUSTER_SERVICE_BIN", "ipfs-cluster-service")
	ctl := rig.Tool(t, "MIRROR_CLUSTER_CTL_BIN", "ipfs-cluster-ctl")
	var peers []*clusterPeer
	for i, k := range kubos {
		p := &clusterPeer{Kubo: k, Dir: filepath.Join(t.TempDir(), fmt.Sprintf("cluster%d", i)), ctl: ctl, serv: serv}
		out, err := exec.Command(serv, "--config", p.Dir, "init", "--consensus", "crdt").CombinedOutput()
		if err != nil {
			t.Fatalf("ipfs-cluster-service init: %v: %s", err, out)
		}
		port := func() string { return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", rig.FreePort(t)) }
		listen := port()
		p.RESTAPI, p.ProxyAPI = port(), port()
		editJSON(t, filepath.Join(p.Dir, "service.json"), func(c map[string]any) {
			cl := c["cluster"].(map[string]any)
			cl["peername"] = fmt.Sprintf("peer%d", i)
			cl["secret"] = clusterSecret
			cl["listen_multiaddress"] = []string{listen}
			cl["mdns_interval"] = "0s"
			cl["enable_relay_hop"] = false
			cl["replication_factor_min"] = repl
			cl["replication_factor_max"] = repl
			cl["monitor_ping_interval"] = "1s"
			cl["peer_watch_interval"] = "1s"
			apis := c["api"].(map[string]any)
			apis["restapi"].(map[string]any)["http_listen_multiaddress"] = p.RESTAPI
			apis["pinsvcapi"].(map[string]any)["http_listen_multiaddress"] = port()
			proxy := apis["ipfsproxy"].(map[string]any)
			proxy["listen_multiaddress"] = p.ProxyAPI
			proxy["node_multiaddress"] = k.APIAddr
			conn := c["ipfs_connector"].(map[string]any)["ipfshttp"].(map[string]any)
			conn["node_multiaddress"] = k.APIAddr
			conn["connect_swarms_delay"] = "1s"
			c["monitor"].(map[string]any)["pubsubmon"].(map[string]any)["check_interval"] = "1s"
			// The allocator only counts peers whose metrics have not
			// expired. An informer republishes at half its TTL; with the
			// default 30 s a peer whose informer is 15 s late on a loaded
			// runner drops out ("Available candidates: 0"). 60 s gives it
			// 30 s; a much longer TTL would leave the metrics published
			// before the peers met unseen for TTL/2.
			for _, inf := range c["informer"].(map[string]any) {
				inf.(map[string]any)["metric_ttl"] = "60s"
			}
		})
		var ident struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(p.Dir, "identity.json"))), &ident); err != nil {
			t.Fatal(err)
		}
		p.ID = ident.ID
		p.Listen = listen + "/p2p/" + p.ID
		peers = append(peers, p)
	}
	// Every peer knows every other's address (peer_addresses), so that
	// peers that did not bootstrap from each other still reach each other
	// with no DHT lookup; the others bootstrap from the first.
	for i, p := range peers {
		var others []string
		for _, o := range peers {
			if o != p {
				others = append(others, o.Listen)
			}
		}
		editJSON(t, filepath.Join(p.Dir, "service.json"), func(c map[string]any) {
			c["cluster"].(map[string]any)["peer_addresses"] = others
		})
		args := []string{"--config", p.Dir, "daemon"}
		if i > 0 {
			args = append(args, "--bootstrap", peers[0].Listen)
		}
		p.start(t, args)
	}
	// `peers ls` prints a line per peer: "ID | NAME | Sees N other peers".
	deadline := time.Now().Add(90 * time.Second)
	want := fmt.Sprintf("Sees %d other peers", len(peers)-1)
	for _, p := range peers {
		for {
			out := p.Ctl(t, "peers", "ls")
			if strings.Count(out, want) == len(peers) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("peer %s: peers ls:\n%s\nlog:\n%s", p.ID, out, p.Log())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	start := time.Now()
	waitAllocatable(t, peers, deadline)
	t.Logf("every peer holds usable allocation metrics of every peer after %s", time.Since(start).Round(time.Second))
	return peers
}

// waitAllocatable waits until every peer holds a valid, unexpired metric
// of every peer for each metric the balanced allocator allocates by
// (tag:group, freespace): pins are allocated by the peer that receives
// them, from its own view of the others' metrics.
func waitAllocatable(t *testing.T, peers []*clusterPeer, deadline time.Time) {
	t.Helper()
	for _, p := range peers {
		for _, name := range []string{"tag:group", "freespace"} {
			for {
				out := p.Ctl(t, "--enc", "json", "health", "metrics", name)
				var ms []struct {
					Peer   string `json:"peer"`
					Valid  bool   `json:"valid"`
					Expire int64  `json:"expire"`
				}
				_ = json.Unmarshal([]byte(out), &ms)
				ok := map[string]bool{}
				for _, m := range ms {
					if m.Valid && time.Unix(0, m.Expire).After(time.Now().Add(20*time.Second)) {
						ok[m.Peer] = true
					}
				}
				n := 0
				for _, o := range peers {
					if ok[o.ID] {
						n++
					}
				}
				if n == len(peers) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("peer %s: usable %s metrics of %d of %d peers:\n%s", p.ID, name, n, len(peers), out)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	}
}

func (p *clusterPeer) start(t *testing.T, args []string) {
	t.Helper()
	cmd := exec.Command(p.serv, args...)
	cmd.Env = append(os.Environ(), "IPFS_TELEMETRY=off", "GOLOG_LOG_LEVEL=warn")
	p.proc = rig.StartReady(t, cmd, "ipfs-cluster-service", "IPFS Cluster is READY", 90*time.Second)
	t.Cleanup(p.stop)
}

func editJSON(t *testing.T, path string, edit func(map[string]any)) {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &c); err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitPinned waits until every CID is pinned on at least n cluster peers.
func waitPinned(t *testing.T, p *clusterPeer, cids []string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for _, c := range cids {
		for {
			var st struct {
				PeerMap map[string]struct {
					Status string `json:"status"`
				} `json:"peer_map"`
			}
			_ = json.Unmarshal([]byte(p.Ctl(t, "--enc", "json", "status", c)), &st)
			pinned := 0
			for _, s := range st.PeerMap {
				if s.Status == "pinned" {
					pinned++
				}
			}
			if pinned >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s pinned on %d peers, want %d: %+v", c, pinned, n, st)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// TestE2EClusterPersistence: a sync on an ephemeral node; `mirror verify
// --pin` through a cluster peer's proxy API pins every CID of every image in
// the cluster (replication 2 of 3); `ipfs-cluster-ctl pin add` keeps the
// published lockfile; the ephemeral node is stopped, and the images still
// verify and pull from the cluster's peers. Then a sync straight through
// the proxy API gives the same CIDs, pinned in the cluster as they are
// added.
func TestE2EClusterPersistence(t *testing.T) {
	opts := rig.KuboOptions{Online: true, SwarmKey: swarmKey()}
	var kubos []*rig.Kubo
	for range 3 {
		kubos = append(kubos, rig.StartKubo(t, opts))
	}
	eph := rig.StartKubo(t, opts)
	for i, k := range append(kubos, eph) {
		for _, o := range kubos[:min(i, len(kubos))] {
			k.Run("swarm", "connect", swarmAddr(t, o))
		}
	}
	peers := startCluster(t, kubos, 2)
	t.Logf("cluster: %d peers; proxy API of peer0 %s", len(peers), peers[0].ProxyAPI)

	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	multi := rig.MultiPlatform(t, 1500, 500<<10)
	single := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1550, 700<<10, false)}})
	rig.Push(t, reg.Host+"/keep/multi:1.0", multi)
	rig.Push(t, reg.Host+"/keep/single:1.0", single)
	dir := t.TempDir()
	list := writeList(t, dir, fmt.Sprintf("version: 1\nimages:\n  - source: %s/keep/multi\n    tags: [\"1.0\"]\n  - source: %s/keep/single\n    tags: [\"1.0\"]\n", reg.Host, reg.Host))
	lockPath := filepath.Join(dir, "mirrors.lock")

	// 1. The ephemeral node (a CI runner's) mirrors the list.
	ephEnv := []string{"IPFS_API=" + eph.APIAddr}
	mustRun(t, ephEnv, "sync", list)
	lock := readLock(t, lockPath)

	// 2. Keep it on the cluster: verify --pin through the proxy API reads
	// every blob back (the cluster's kubo fetches them from the runner) and
	// pins every CID in the cluster.
	proxyEnv := []string{"IPFS_API=" + peers[0].ProxyAPI}
	waitAllocatable(t, peers, time.Now().Add(90*time.Second))
	v := parseVerify(t, mustRun(t, proxyEnv, "--json", "verify", "--pin", lockPath))
	if v.OK != 2 || v.Pinned == 0 {
		t.Fatalf("verify --pin through the cluster proxy: %+v", v)
	}
	var all []string
	for _, e := range lock.Images {
		all = append(all, e.CID)
		for _, c := range treeCIDs(t, eph, e.CID) {
			all = append(all, c.cid)
		}
	}
	lockCID := mustRun(t, ephEnv, "publish", "--with-list", list, lockPath).lastLine()
	peers[1].Ctl(t, "pin", "add", "--replication", "2", "--name", "mirrors.lock", lockCID)
	waitPinned(t, peers[0], append(all, lockCID), 2)
	pinset := peers[2].Ctl(t, "pin", "ls")
	t.Logf("cluster pinset: %d pins; verify --pin added %d", strings.Count(pinset, "\n"), v.Pinned)
	for _, c := range all {
		if !strings.Contains(pinset, c) {
			t.Errorf("%s not in the cluster pinset", c)
		}
	}

	// 3. The runner goes away.
	eph.Stop()

	// 4. Everything still comes from the cluster's peers: verify on each
	// kubo of the cluster, and pull the images back.
	for i, k := range kubos {
		env := []string{"IPFS_API=" + k.APIAddr}
		v := parseVerify(t, mustRun(t, env, "--json", "--timeout", "3m", "verify", lockPath))
		if v.OK != 2 {
			t.Errorf("verify on cluster kubo %d: %+v", i, v)
		}
	}
	env := []string{"IPFS_API=" + kubos[2].APIAddr}
	for i, node := range []any{multi, single} {
		out := filepath.Join(t.TempDir(), "oci")
		mustRun(t, env, "pull", lock.Images[i].CID, "oci:"+out)
		rig.SkopeoReads(t, "oci:"+out)
		sameBlobs(t, "pull from the cluster "+lock.Images[i].Source, rig.SourceBlobs(t, node), rig.LayoutBlobs(t, out))
	}
	if got := kubos[2].Run("cat", "/ipfs/"+lockCID+"/mirrors.lock"); got != readFile(t, lockPath) {
		t.Error("the published lockfile is not the lockfile")
	}

	// 5. The other recipe: sync straight through the proxy API. The
	// cluster's adder gives the same CIDs and pins what it adds.
	dir2 := t.TempDir()
	list2 := writeList(t, dir2, readFile(t, list))
	mustRun(t, proxyEnv, "sync", list2)
	lock2 := readLock(t, filepath.Join(dir2, "mirrors.lock"))
	for i, e := range lock2.Images {
		if e.CID != lock.Images[i].CID {
			t.Errorf("%s: through the cluster proxy %s, through kubo %s", e.Source, e.CID, lock.Images[i].CID)
		}
	}
	t.Logf("sync through the cluster proxy: same %d root CIDs", len(lock2.Images))
}

// startDaemonOn starts a kubo daemon (offline) on k's repo as our own
// process, for configurations testrig's start cannot talk to (an API that
// wants a token); it returns the API multiaddr and stops with the test.
func startDaemonOn(t *testing.T, k *rig.Kubo) string {
	t.Helper()
	_ = os.Remove(filepath.Join(k.Repo, "api"))
	cmd := exec.Command(k.Bin, "daemon", "--offline", "--migrate=false")
	cmd.Env = append(os.Environ(), "IPFS_PATH="+k.Repo, "IPFS_TELEMETRY=off", "GOLOG_LOG_LEVEL=error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var log lockedLog
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(log.String(), "Daemon is ready") {
		select {
		case <-done:
			t.Fatalf("ipfs daemon exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipfs daemon not ready:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return strings.TrimSpace(readFile(t, filepath.Join(k.Repo, "api")))
}

type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestE2EPersistentNodeAuth: a persistent node whose RPC API wants a token
// (kubo's API.Authorizations): sync, verify and pull with
// --ipfs-api-header; without it or with a wrong one, exit 4; the header's
// value is never printed.
func TestE2EPersistentNodeAuth(t *testing.T) {
	const token, wrong = "persist-t0ken-4f9a", "wr0ng-t0ken-77c1"
	k := rig.StartKubo(t, rig.KuboOptions{})
	k.Run("config", "--json", "API.Authorizations", `{"ci":{"AuthSecret":"bearer:`+token+`","AllowedPaths":["/api/v0"]}}`)
	k.Stop()
	api := startDaemonOn(t, k)

	reg := rig.StartRegistry(t, rig.RegistryOptions{})
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 1700, 300<<10, false)}})
	rig.Push(t, reg.Host+"/auth/app:1.0", img)
	dir := t.TempDir()
	list := writeList(t, dir, "version: 1\nimages:\n  - source: "+reg.Host+"/auth/app\n    tags: [\"1.0\"]\n")
	lockPath := filepath.Join(dir, "mirrors.lock")

	noLeak := func(r result, what string) {
		t.Helper()
		for _, s := range []string{token, wrong} {
			if strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("%s: a header value is in the output:\n%s\n%s", what, r.stdout, r.stderr)
			}
		}
	}
	env := []string{"IPFS_API=" + api}
	r := mirrorRun(t, env, "sync", list)
	if r.code != ExitIPFS || !strings.Contains(r.stderr, "Access Denied") {
		t.Errorf("no token: exit %d: %s", r.code, r.stderr)
	}
	r = mirrorRun(t, env, "--ipfs-api-header", "Authorization: Bearer "+wrong, "sync", list)
	if r.code != ExitIPFS {
		t.Errorf("wrong token: exit %d: %s", r.code, r.stderr)
	}
	noLeak(r, "wrong token")
	hdr := []string{"--ipfs-api-header", "Authorization: Bearer " + token}
	r = mustRun(t, env, append(hdr, "-v", "sync", list)...)
	noLeak(r, "sync")
	r = mustRun(t, env, append(hdr, "verify", "--pin", lockPath)...)
	noLeak(r, "verify")
	if !strings.Contains(r.stdout, "verify: 1 ok, 0 failed") {
		t.Errorf("verify:\n%s", r.stdout)
	}
	lock := readLock(t, lockPath)
	out := filepath.Join(t.TempDir(), "oci")
	mustRun(t, env, append(hdr, "pull", lock.Images[0].CID, "oci:"+out)...)
	rig.SkopeoReads(t, "oci:"+out)
	sameBlobs(t, "pull with a token", rig.SourceBlobs(t, img), rig.LayoutBlobs(t, out))
	r = mirrorRun(t, env, "--ipfs-api-header", "Authorization Bearer "+token, "verify", lockPath)
	if r.code != ExitUsage {
		t.Errorf("malformed header: exit %d: %s", r.code, r.stderr)
	}
	noLeak(r, "malformed header")
}
