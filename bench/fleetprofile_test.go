//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// profiler takes the cordon-server processes' CPU and heap profiles in
// each phase when BENCH_PROFILE names a directory, so a figure that falls
// short comes with the profile that shows why. Each server then serves
// its profiles on loopback (--pprof-listen); the reference has none.
type profiler struct {
	c   fleetConfig
	dir string
}

func (p profiler) on() bool          { return p.dir != "" }
func (p profiler) addr(k int) string { return fmt.Sprintf("127.0.0.1:%d", p.c.basePort+100+k) }

// cpu profiles every server process for d, from now, into
// <phase>-<k>.cpu.pprof; the returned func waits for them.
func (p profiler) cpu(b *testing.B, phase string, d time.Duration) (wait func()) {
	if !p.on() {
		return func() {}
	}
	var wg sync.WaitGroup
	for k := range p.c.servers {
		wg.Go(func() {
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.addr(k), max(1, int(d.Seconds())))
			p.fetch(b, url, fmt.Sprintf("%s-%d.cpu.pprof", phase, k), d+time.Minute)
		})
	}
	return wg.Wait
}

// heap takes every server process's heap profile now.
func (p profiler) heap(b *testing.B, phase string) {
	if !p.on() {
		return
	}
	for k := range p.c.servers {
		p.fetch(b, fmt.Sprintf("http://%s/debug/pprof/heap", p.addr(k)), fmt.Sprintf("%s-%d.heap.pprof", phase, k), time.Minute)
	}
}

func (p profiler) fetch(b *testing.B, url, name string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Logf("profile %s: %s", name, resp.Status)
		return
	}
	path := filepath.Join(p.dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Logf("profile %s: %v", name, err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Logf("profile %s: %v", name, err)
	}
}

// summary logs the top of each CPU profile taken, with the server binary
// so the symbols resolve.
func (p profiler) summary(b *testing.B, bin string) {
	if !p.on() {
		return
	}
	files, _ := filepath.Glob(filepath.Join(p.dir, "*.cpu.pprof"))
	for _, f := range files {
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", bin, f).CombinedOutput()
		if err != nil {
			b.Logf("pprof %s: %v", f, err)
		}
		b.Logf("%s:\n%s", filepath.Base(f), out)
	}
	b.Logf("profiles kept in %s (go tool pprof %s <file>)", p.dir, bin)
}
