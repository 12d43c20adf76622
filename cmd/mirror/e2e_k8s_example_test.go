package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ipfs-mirror/mirror/internal/rig"
)

// TestE2EKubernetesExample runs the moving parts of
// docs/kubernetes/mirror-p2p.yaml on 127.0.0.1, each from the YAML's own
// text (shell scripts verbatim but for paths and ports, mirror's args as
// written but for the Service names): an origin kubo outside the cluster
// that `mirror sync` wrote a docker.io image to (a stand-in Docker Hub, as in
// TestE2EStackDockerHubMirror); the seed's kubo config made by the commands
// the Secret's comment lists and started by the Deployment's script; the
// Job's `mirror verify --pin` on the seed; the DaemonSet's two init
// containers (the hosts.toml, the repo made by kubo's CLI) and its mirror
// serve --peer <seed>. A pull through the address hosts.toml names, by the
// lockfile's docker.io name, gets byte-identical blobs; the seed sent them
// (its bitswap ledger), the origin sent nothing during that pull and never
// met the node.
func TestE2EKubernetesExample(t *testing.T) {
	t.Parallel()
	deadline(t, 3*time.Minute)
	raw, kinds := readK8sExample(t)
	ipfsBin := rig.Tool(t, "MIRROR_IPFS_BIN", "ipfs")
	crane := craneBin(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	// `ipfs` in the scripts is this kubo.
	bin := t.TempDir()
	if err := os.Symlink(ipfsBin, filepath.Join(bin, "ipfs")); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")
	key := randomSwarmKey(t)

	// The origin: a private swarm's kubo that mirror sync wrote to.
	hub := rig.StartFakeHub(t)
	img := rig.Image(t, rig.ImageSpec{Layers: []v1.Layer{rig.Layer(t, 171, 700<<10, false), rig.Layer(t, 172, 300<<10, false)}})
	hub.Push(t, "docker.io/library/k8sapp:1.0", img)
	want := rig.SourceBlobs(t, img)
	size := 0
	for _, b := range want {
		size += len(b)
	}
	origin := rig.StartKubo(t, rig.KuboOptions{Online: true, SwarmKey: key})
	dir := t.TempDir()
	list := writeList(t, dir, "version: 1\nimages:\n  - source: docker.io/library/k8sapp\n    tags: [\"1.0\"]\n")
	mustRun(t, []string{"IPFS_API=" + origin.APIAddr, "HTTPS_PROXY=" + hub.Proxy}, "--insecure", "sync", list)
	lock := readFile(t, filepath.Join(dir, "mirrors.lock"))
	lf := readLock(t, filepath.Join(dir, "mirrors.lock"))
	if len(lf.Images) != 1 || lf.Images[0].Source != "docker.io/library/k8sapp:1.0" {
		t.Fatalf("lockfile: %+v", lf.Images)
	}
	originAddr := swarmAddr(t, origin)

	// The volumes: one directory per Secret, ConfigMap, claim or host path,
	// filled as the cluster would (the Secret's keys, the ConfigMap's data).
	kl := &kubelet{t: t, dirs: map[string]string{}}
	secret := kinds["Secret/mirror-swarm"]
	if _, ok := secret.StringData["seed-config"]; !ok {
		t.Fatal("Secret mirror-swarm has no seed-config")
	}
	if _, ok := secret.StringData["swarm.key"]; !ok {
		t.Fatal("Secret mirror-swarm has no swarm.key")
	}
	swarmDir := kl.dir("secret/mirror-swarm")
	writeFile(t, filepath.Join(swarmDir, "swarm.key"), key)
	cm := kinds["ConfigMap/mirror-lock"]
	for k := range cm.Data {
		writeFile(t, filepath.Join(kl.dir("configmap/mirror-lock"), k), lock)
	}
	svc := map[string]int{}
	for _, p := range kinds["Service/mirror-seed"].Spec.Ports {
		svc[p.Name] = p.Port
	}

	// The seed's config, made by the commands the Secret's comment lists.
	cfgRepo := filepath.Join(t.TempDir(), "seed-config")
	script := seedConfigScript(t, raw)
	script = strings.NewReplacer("<origin ID>", origin.PeerID, "<origin addr>", strings.TrimSuffix(originAddr, "/p2p/"+origin.PeerID)).Replace(script)
	runSh(t, sh, script, "IPFS_PATH="+cfgRepo, "IPFS_TELEMETRY=off", path)
	var cfg struct {
		Identity  struct{ PeerID string }
		Addresses struct {
			Swarm []string
			API   any
		}
		Swarm   struct{ AddrFilters []string }
		Peering struct{ Peers []struct{ ID string } }
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(cfgRepo, "config"))), &cfg); err != nil {
		t.Fatal(err)
	}
	// Checks the loopback run below cannot make: the seed is reached from
	// other pods (the Job's --ipfs-api, the nodes' --peer) through its
	// Service, on pod and node addresses in private ranges.
	if api := fmt.Sprint(cfg.Addresses.API); api != fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", svc["api"]) {
		t.Errorf("the seed's config: Addresses.API %s; the Job reaches it through the Service's api port %d, so it must listen on /ip4/0.0.0.0/tcp/%d", api, svc["api"], svc["api"])
	}
	if !slices.Contains(cfg.Addresses.Swarm, fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", svc["swarm"])) {
		t.Errorf("the seed's config: Addresses.Swarm %v has no /ip4/0.0.0.0/tcp/%d (the Service's swarm port)", cfg.Addresses.Swarm, svc["swarm"])
	}
	for _, f := range cfg.Swarm.AddrFilters {
		if slices.Contains([]string{"/ip4/10.0.0.0/ipcidr/8", "/ip4/172.16.0.0/ipcidr/12", "/ip4/192.168.0.0/ipcidr/16", "/ip4/100.64.0.0/ipcidr/10", "/ip4/127.0.0.0/ipcidr/8"}, f) {
			t.Errorf("the seed's config: Swarm.AddrFilters has %s: the seed could not reach the origin or the nodes on a private network", f)
		}
	}
	if len(cfg.Peering.Peers) != 1 || cfg.Peering.Peers[0].ID != origin.PeerID {
		t.Errorf("the seed's config: Peering.Peers %+v, want the origin", cfg.Peering.Peers)
	}
	// For this test only: the config's IPv4 swarm addresses (every
	// transport it lists) on loopback and a free port, the API and the
	// gateway on ports the system picks.
	port := strconv.Itoa(rig.FreePort(t))
	var swarm []string
	for _, a := range cfg.Addresses.Swarm {
		if a, ok := strings.CutPrefix(a, "/ip4/0.0.0.0/"); ok {
			swarm = append(swarm, "/ip4/127.0.0.1/"+regexp.MustCompile(`^(tcp|udp)/\d+`).ReplaceAllString(a, "${1}/"+port))
		}
	}
	addrs, _ := json.Marshal(swarm)
	for _, kv := range [][2]string{
		{"Addresses.Swarm", string(addrs)},
		{"Addresses.API", `"/ip4/127.0.0.1/tcp/0"`},
		{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/0"`},
	} {
		ipfsOn(t, cfgRepo, "config", "--json", kv[0], kv[1])
	}
	writeFile(t, filepath.Join(swarmDir, "seed-config"), readFile(t, filepath.Join(cfgRepo, "config")))

	// The seed: the Deployment's script.
	seedPod := kinds["Deployment/mirror-seed"].Spec.Template.Spec
	if len(seedPod.Containers) != 1 {
		t.Fatalf("Deployment mirror-seed: %d containers", len(seedPod.Containers))
	}
	sc := seedPod.Containers[0]
	seedRepl, seedEnv := kl.mounts(seedPod, sc)
	seed := startScript(t, sh, seedRepl.Replace(containerScript(t, sc)), append(seedEnv, path))
	seedRepo := envValue(seedEnv, "IPFS_PATH")
	if seedRepo == "" {
		t.Fatal("Deployment mirror-seed: no IPFS_PATH")
	}
	seedID := ipfsOn(t, seedRepo, "config", "Identity.PeerID")
	if seedID != cfg.Identity.PeerID {
		t.Errorf("the seed runs as %s, not the identity of the Secret's config %s", seedID, cfg.Identity.PeerID)
	}
	seedAPI := strings.TrimSpace(readFile(t, filepath.Join(seedRepo, "api")))
	seedSwarm := ""
	listening := ipfsOn(t, seedRepo, "swarm", "addrs", "listen")
	for _, a := range strings.Fields(listening) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			seedSwarm = a
			break
		}
	}
	if seedSwarm == "" {
		t.Fatalf("the seed listens on no loopback TCP address: %s\n%s", listening, seed.Log())
	}
	// Its Peering.Peers: connected to the origin.
	for start := time.Now(); !strings.Contains(ipfsOn(t, seedRepo, "swarm", "peers"), origin.PeerID); {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the seed did not connect to the origin (its Peering.Peers) in 20s:\n%s", seed.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The Service's names, as this machine reaches them.
	service := func(port int) string { return fmt.Sprintf("/dns4/mirror-seed.mirror.svc.cluster.local/tcp/%d", port) }
	cluster := []string{service(svc["api"]), seedAPI, service(svc["swarm"]), seedSwarm, "<seed peer ID>", seedID}

	// Pre-seed: the Job's mirror args against the seed's API.
	job := kinds["Job/mirror-preseed"].Spec.Template.Spec
	if len(job.Containers) != 1 {
		t.Fatalf("Job mirror-preseed: %d containers", len(job.Containers))
	}
	jobRepl, jobEnv := kl.mounts(job, job.Containers[0], cluster...)
	jobArgs := replaceAll(jobRepl, job.Containers[0].Args)
	if !slices.Contains(jobArgs, seedAPI) {
		t.Fatalf("the Job's args %v do not name the seed's API (%s) after substitution", job.Containers[0].Args, service(svc["api"]))
	}
	before := bitswapSent(t, origin.Run("bitswap", "stat", "--enc=json"))
	mustRun(t, jobEnv, jobArgs...)
	preseeded := bitswapSent(t, origin.Run("bitswap", "stat", "--enc=json"))
	t.Logf("pre-seed: the origin sent %d bytes over bitswap (the image's blobs are %d bytes)", preseeded-before, size)
	if preseeded-before < size {
		t.Errorf("pre-seed: the origin sent %d bytes, want at least the image's %d", preseeded-before, size)
	}

	// The node: the DaemonSet's init containers, then its mirror.
	ds := kinds["DaemonSet/mirror-node"].Spec.Template.Spec
	if len(ds.Containers) != 1 {
		t.Fatalf("DaemonSet mirror-node: %d containers", len(ds.Containers))
	}
	mc := ds.Containers[0]
	listen := ""
	for i, a := range mc.Args {
		if a == "--listen" && i+1 < len(mc.Args) {
			listen = mc.Args[i+1]
		}
	}
	if listen == "" {
		t.Fatalf("DaemonSet: mirror serve has no --listen: %v", mc.Args)
	}
	serveAt := fmt.Sprintf("127.0.0.1:%d", rig.FreePort(t))
	node := append([]string{listen, serveAt}, cluster...)
	nodeRepo := ""
	var hostsTOML string
	for _, c := range ds.InitContainers {
		repl, env := kl.mounts(ds, c, node...)
		s := repl.Replace(containerScript(t, c))
		// Loopback only, ports the system picks.
		s = regexp.MustCompile(`/ip4/0\.0\.0\.0/`).ReplaceAllString(s, "/ip4/127.0.0.1/")
		s = regexp.MustCompile(`(/ip4/127\.0\.0\.1/tcp/)\d+`).ReplaceAllString(s, "${1}0")
		runSh(t, sh, s, append(env, path)...)
		if v := envValue(env, "IPFS_PATH"); v != "" {
			nodeRepo = v
		}
		for _, m := range c.VolumeMounts {
			if f := filepath.Join(repl.Replace(m.MountPath), "docker.io", "hosts.toml"); fileExists(f) {
				hostsTOML = readFile(t, f)
			}
		}
	}
	if nodeRepo == "" || !fileExists(filepath.Join(nodeRepo, "config")) {
		t.Fatal("DaemonSet: no init container made an IPFS repo")
	}
	if hostsTOML == "" {
		t.Fatal("DaemonSet: no init container wrote docker.io/hosts.toml")
	}
	m := regexp.MustCompile(`(?m)^\[host\."(https?://[^"]+)"\]\n\s+capabilities = \["pull", "resolve"\]`).FindStringSubmatch(hostsTOML)
	if m == nil || m[1] != "http://"+serveAt {
		t.Fatalf("the hosts.toml the init container wrote does not send pulls to mirror serve (http://%s):\n%s", serveAt, hostsTOML)
	}
	mirrorAt := strings.TrimPrefix(m[1], "http://")
	nodeID := ipfsOn(t, nodeRepo, "config", "Identity.PeerID")

	repl, env := kl.mounts(ds, mc, node...)
	args := replaceAll(repl, mc.Args)
	if !slices.Contains(args, seedSwarm+"/p2p/"+seedID) {
		t.Fatalf("the DaemonSet's args %v do not name the seed (%s/p2p/%s) after substitution", mc.Args, seedSwarm, seedID)
	}
	p := startMirrorServe(t, env, args...)
	if p.host != serveAt {
		t.Fatalf("mirror serve listens on %s, not %s", p.host, serveAt)
	}

	// containerd's first request, then a whole pull by the lockfile's name.
	ref := strings.TrimPrefix(lf.Images[0].Source, "docker.io/")
	repo, tag, _ := strings.Cut(ref, ":")
	req, err := http.NewRequest(http.MethodHead, "http://"+mirrorAt+"/v2/"+repo+"/manifests/"+tag+"?ns=docker.io", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /v2/%s/manifests/%s?ns=docker.io (containerd's resolve): %s", repo, tag, resp.Status)
	}
	out := filepath.Join(t.TempDir(), "crane")
	runTool(t, crane, "pull", "--format=oci", mirrorAt+"/"+ref, out)
	sameBlobs(t, "crane pull "+ref+" from the node's mirror serve", want, rig.LayoutBlobs(t, out))

	after := bitswapSent(t, origin.Run("bitswap", "stat", "--enc=json"))
	if after != preseeded {
		t.Errorf("the origin sent %d bytes over bitswap during the node's pull, want 0", after-preseeded)
	}
	if peers := origin.Run("swarm", "peers"); strings.Contains(peers, nodeID) {
		t.Errorf("the node (%s) is connected to the origin:\n%s", nodeID, peers)
	}
	var ledger struct{ Sent int }
	if err := json.Unmarshal([]byte(ipfsOn(t, seedRepo, "bitswap", "ledger", "--enc=json", nodeID)), &ledger); err != nil {
		t.Fatal(err)
	}
	t.Logf("the seed sent the node %d bytes over bitswap; the origin none", ledger.Sent)
	if ledger.Sent < size {
		t.Errorf("the seed's bitswap ledger: %d bytes sent to the node, want at least the image's %d", ledger.Sent, size)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("mirror serve exited %d after SIGTERM:\n%s", code, p.stderr())
	}
}

// kubelet stands in for the volumes of the example's pods: one directory
// per volume source, shared by the pods that mount it.
type kubelet struct {
	t    *testing.T
	dirs map[string]string
}

func (k *kubelet) dir(source string) string {
	if d, ok := k.dirs[source]; ok {
		return d
	}
	d := filepath.Join(k.t.TempDir(), strings.ReplaceAll(source, "/", "-"))
	if err := os.MkdirAll(d, 0o755); err != nil {
		k.t.Fatal(err)
	}
	k.dirs[source] = d
	return d
}

// mounts is c's view of the machine: what replaces each mount path (a
// whole path or its prefix up to a "/") by its directory, then the extra
// old, new pairs; and c's env through it.
func (k *kubelet) mounts(pod k8sPodSpec, c k8sContainer, extra ...string) (*subst, []string) {
	k.t.Helper()
	s := &subst{mounts: map[string]string{}, extra: strings.NewReplacer(extra...)}
	for _, m := range c.VolumeMounts {
		i := slices.IndexFunc(pod.Volumes, func(v k8sVolume) bool { return v.Name == m.Name })
		if i < 0 {
			k.t.Fatalf("container %s mounts %s, which the pod does not have", c.Name, m.Name)
		}
		v := pod.Volumes[i]
		var source string
		switch {
		case v.Secret != nil:
			source = "secret/" + v.Secret.SecretName
		case v.ConfigMap != nil:
			source = "configmap/" + v.ConfigMap.Name
		case v.PVC != nil:
			source = "pvc/" + v.PVC.ClaimName
		case v.HostPath != nil:
			source = "host" + v.HostPath.Path
		default:
			k.t.Fatalf("volume %s: a kind this test does not know", v.Name)
		}
		s.mounts[m.MountPath] = k.dir(source)
	}
	env := []string{}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+s.Replace(e.Value))
	}
	return s, env
}

// subst rewrites a container's paths and the cluster's names for this
// machine.
type subst struct {
	mounts map[string]string
	extra  *strings.Replacer
}

// pathRE is an absolute path that starts a word.
var pathRE = regexp.MustCompile(`(^|[^A-Za-z0-9._/$-])(/[A-Za-z0-9._/-]*)`)

func (s *subst) Replace(text string) string {
	var b strings.Builder
	last := 0
	for _, m := range pathRE.FindAllStringSubmatchIndex(text, -1) {
		p := text[m[4]:m[5]]
		for mp, dir := range s.mounts {
			if rest, ok := strings.CutPrefix(p, mp); ok && (rest == "" || rest[0] == '/') {
				b.WriteString(text[last:m[4]] + dir + rest)
				last = m[5]
				break
			}
		}
	}
	b.WriteString(text[last:])
	return s.extra.Replace(b.String())
}

func envValue(env []string, name string) string {
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, name+"="); ok {
			return v
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func replaceAll(r *subst, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// containerScript is the shell script of a container run as
// ["/bin/sh", "-c"] with it as its one arg.
func containerScript(t *testing.T, c k8sContainer) string {
	t.Helper()
	if !slices.Equal(c.Command, []string{"/bin/sh", "-c"}) || len(c.Args) != 1 {
		t.Fatalf("container %s: command %q args %q: not a /bin/sh -c script", c.Name, c.Command, c.Args)
	}
	return c.Args[0]
}

// seedConfigScript is the commands the comment above the Secret lists for
// making the seed's config (`...` spans naming ipfs), as one script on the
// IPFS_PATH it is run with.
func seedConfigScript(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "\nkind: Secret\n")
	if i < 0 {
		t.Fatal("no Secret in the example")
	}
	head := raw[:i]
	head = head[strings.LastIndex(head, "\n---\n")+1:]
	var comment strings.Builder
	for _, l := range strings.Split(head, "\n") {
		if c, ok := strings.CutPrefix(l, "#"); ok {
			comment.WriteString(strings.TrimPrefix(c, " ") + " ")
		}
	}
	var cmds []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(comment.String(), -1) {
		c := m[1]
		if !strings.Contains(c, "ipfs ") {
			continue
		}
		// The comment's fresh repo is the test's.
		c = strings.Replace(c, "IPFS_PATH=$(mktemp -d) ", "", 1)
		cmds = append(cmds, c)
	}
	if len(cmds) < 2 || !strings.HasPrefix(cmds[0], "ipfs init") {
		t.Fatalf("the Secret's comment lists no `ipfs init …` then `ipfs config …` commands: %q", cmds)
	}
	return "set -e\n" + strings.Join(cmds, "\n") + "\n"
}

func runSh(t *testing.T, sh, script string, env ...string) {
	t.Helper()
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", script, err, out)
	}
}

// scriptProc is a long-running script (the seed's, which execs the daemon).
// startScript runs script until kubo in it says it is ready; it is stopped
// when the test ends.
func startScript(t *testing.T, sh, script string, env []string) *rig.Proc {
	t.Helper()
	cmd := exec.Command(sh, "-c", script)
	cmd.Env = append(os.Environ(), append(env, "GOLOG_LOG_LEVEL=error")...)
	p := rig.StartReady(t, cmd, "the script's daemon", "Daemon is ready", 60*time.Second)
	t.Cleanup(func() { p.Stop(15 * time.Second) })
	return p
}

// bitswapSent is DataSent of `ipfs bitswap stat --enc=json`.
func bitswapSent(t *testing.T, stat string) int {
	t.Helper()
	var s struct{ DataSent json.Number }
	if err := json.Unmarshal([]byte(stat), &s); err != nil {
		t.Fatalf("bitswap stat: %v\n%s", err, stat)
	}
	n, err := strconv.Atoi(s.DataSent.String())
	if err != nil {
		t.Fatalf("bitswap stat: DataSent %q", s.DataSent)
	}
	return n
}

// randomSwarmKey is a private swarm of this test alone.
func randomSwarmKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(b) + "\n"
}
