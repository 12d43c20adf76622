package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs-mirror/mirror/internal/rig"
	"github.com/ipfs-mirror/mirror/mirror/ipfs/gateway"
)

// BenchmarkCat reads one file (MIRROR_GATEWAY_BENCH_MIB, default 256 MiB)
// from kubo's gateway through the store, and with `ipfs cat` from the same
// node, one after the other in each iteration. It reports both
// throughputs, their ratio (the target is ≥ 0.8) and the peak RSS of this
// process during the store's reads. MIRROR_GATEWAY_BENCH_SEGMENT (bytes),
// _PER_GATEWAY and _WINDOW tune the store.
//
//	go test -run - -bench Cat -benchtime 3x ./mirror/ipfs/gateway/
func BenchmarkCat(b *testing.B) {
	mib := envInt("MIRROR_GATEWAY_BENCH_MIB", 256)
	k := rig.StartKubo(b, rig.KuboOptions{})
	data := payload(99, mib<<20)
	want := sha256.Sum256(data)
	c := add(b, k, data, false)
	data = nil
	debug.FreeOSMemory()
	s, _ := newStore(b, gateway.Options{
		Gateways:    []string{k.GatewayURL()},
		SegmentSize: int64(envInt("MIRROR_GATEWAY_BENCH_SEGMENT", 0)),
		PerGateway:  envInt("MIRROR_GATEWAY_BENCH_PER_GATEWAY", 0),
		Window:      envInt("MIRROR_GATEWAY_BENCH_WINDOW", 0),
	})
	ctx := context.Background()
	var gwTime, catTime time.Duration
	var peak int64
	b.SetBytes(int64(mib) << 20)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		cmd := exec.CommandContext(ctx, k.Bin, "cat", c.String())
		cmd.Env = append(os.Environ(), "IPFS_PATH="+k.Repo, "IPFS_TELEMETRY=off")
		cmd.Stdout = io.Discard
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("ipfs cat: %v: %s", err, stderr.String())
		}
		catTime += time.Since(t0)

		resetPeakRSS()
		t0 = time.Now()
		rc, err := s.Cat(ctx, c, 0, -1)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		gwTime += time.Since(t0)
		if !bytes.Equal(h.Sum(nil), want[:]) {
			b.Fatal("wrong bytes")
		}
		peak = max(peak, peakRSS())
	}
	b.StopTimer()
	size := float64(int64(mib)<<20) * float64(b.N) / (1 << 20)
	b.ReportMetric(size/gwTime.Seconds(), "gateway-MiB/s")
	b.ReportMetric(size/catTime.Seconds(), "ipfs-cat-MiB/s")
	b.ReportMetric(catTime.Seconds()/gwTime.Seconds(), "ratio")
	if peak > 0 {
		b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// resetPeakRSS resets this process's VmHWM (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is VmHWM in bytes, or 0.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
