package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"gopkg.in/yaml.v3"
)

// TestKubernetesExample keeps docs/kubernetes/mirror-p2p.yaml true to the
// binary: every document parses, every mirror container's arguments parse
// with this CLI (flags that exist, values they accept), the DaemonSet's
// serve listens where its hosts.toml sends containerd, and its --peer names
// the seed's Service and swarm port. The topology itself is the p2p
// benchmark's star (internal/cmd/mirror-bench, --p2p-topology star).
func TestKubernetesExample(t *testing.T) {
	_, kinds := readK8sExample(t)
	for _, k := range []string{"Namespace/mirror", "Secret/mirror-swarm", "ConfigMap/mirror-lock", "Deployment/mirror-seed", "Service/mirror-seed", "NetworkPolicy/mirror-seed", "Job/mirror-preseed", "DaemonSet/mirror-node"} {
		if _, ok := kinds[k]; !ok {
			t.Errorf("no %s in the example", k)
		}
	}
	parse := func(what string, args []string) *CLI {
		t.Helper()
		var cli CLI
		p, err := kong.New(&cli, kong.Vars{"version": "test"}, modeVars(), kong.Exit(func(int) { t.Fatalf("%s: the CLI exited", what) }))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(args); err != nil {
			t.Errorf("%s: mirror %s: %v", what, strings.Join(args, " "), err)
		}
		return &cli
	}
	job := kinds["Job/mirror-preseed"].Spec.Template.Spec.Containers
	if len(job) != 1 {
		t.Fatalf("Job: %d containers", len(job))
	}
	parse("Job mirror-preseed", job[0].Args)

	ds := kinds["DaemonSet/mirror-node"].Spec.Template.Spec
	if len(ds.Containers) != 1 {
		t.Fatalf("DaemonSet: %d containers", len(ds.Containers))
	}
	// The placeholder the reader fills in, as a real peer ID.
	args := slices.Clone(ds.Containers[0].Args)
	for i := range args {
		args[i] = strings.ReplaceAll(args[i], "<seed peer ID>", "12D3KooWRAw6LaR5kkJbV17yC7KxeB5Qi7fvBZZr5TtkuRfn36jH")
	}
	cli := parse("DaemonSet mirror-node", args)
	// --peer names the seed by its Service's DNS name, which a hostNetwork
	// pod resolves only with this policy.
	if ds.HostNetwork && ds.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("DaemonSet: hostNetwork with dnsPolicy %q: the pod resolves names with the node's resolver, where --peer's mirror-seed.mirror.svc.cluster.local does not resolve; set dnsPolicy: ClusterFirstWithHostNet", ds.DNSPolicy)
	}
	if cli.Serve.Listen != "127.0.0.1:5050" {
		t.Errorf("DaemonSet: serve listens on %q", cli.Serve.Listen)
	}
	var hosts string
	for _, c := range ds.InitContainers {
		hosts += strings.Join(c.Args, "\n")
	}
	if !strings.Contains(hosts, `[host."http://`+cli.Serve.Listen+`"]`) || !strings.Contains(hosts, `capabilities = ["pull", "resolve"]`) {
		t.Errorf("DaemonSet: the hosts.toml its init container writes does not send pulls to %s:\n%s", cli.Serve.Listen, hosts)
	}
	seedPort := 0
	for _, p := range kinds["Service/mirror-seed"].Spec.Ports {
		if p.Name == "swarm" {
			seedPort = p.Port
		}
	}
	peer := regexp.MustCompile(`^/dns4/mirror-seed\.mirror\.svc\.cluster\.local/tcp/(\d+)/p2p/<seed peer ID>$`)
	found := false
	for i, a := range ds.Containers[0].Args {
		if a == "--peer" && i+1 < len(ds.Containers[0].Args) {
			m := peer.FindStringSubmatch(ds.Containers[0].Args[i+1])
			if m == nil || m[1] != strconv.Itoa(seedPort) {
				t.Errorf("DaemonSet: --peer %s does not name the seed's Service on its swarm port %d", ds.Containers[0].Args[i+1], seedPort)
			}
			found = true
		}
	}
	if !found {
		t.Error("DaemonSet: mirror has no --peer (the seed)")
	}
}

// The parts of a Kubernetes manifest the example's tests read.
type (
	k8sContainer struct {
		Name    string
		Image   string
		Command []string
		Args    []string
		Env     []struct {
			Name  string
			Value string
		}
		VolumeMounts []struct {
			Name      string
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	k8sVolume struct {
		Name   string
		Secret *struct {
			SecretName string `yaml:"secretName"`
		}
		ConfigMap *struct{ Name string } `yaml:"configMap"`
		PVC       *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
		HostPath *struct{ Path string } `yaml:"hostPath"`
	}
	k8sPodSpec struct {
		HostNetwork    bool           `yaml:"hostNetwork"`
		DNSPolicy      string         `yaml:"dnsPolicy"`
		InitContainers []k8sContainer `yaml:"initContainers"`
		Containers     []k8sContainer
		Volumes        []k8sVolume
	}
	k8sDoc struct {
		Kind       string
		Metadata   struct{ Name string }
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string
		Spec       struct {
			Template struct{ Spec k8sPodSpec }
			Ports    []struct {
				Name string
				Port int
			}
		}
	}
)

// readK8sExample reads docs/kubernetes/mirror-p2p.yaml: its text and its
// documents by "Kind/name".
func readK8sExample(t *testing.T) (string, map[string]k8sDoc) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/kubernetes/mirror-p2p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]k8sDoc{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for n := 1; ; n++ {
		var d k8sDoc
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("document %d: %v", n, err)
		}
		kinds[d.Kind+"/"+d.Metadata.Name] = d
	}
	return string(raw), kinds
}
