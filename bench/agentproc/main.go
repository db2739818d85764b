//go:build linux

// Command agentproc is the agent that `make bench` measures: the real
// agent and collector packages (and nothing else, so its memory is the
// agent's) with every interval divided by -scale, so an hour of a
// deployed agent's work runs in seconds. It prints one line:
//
//	AGENT rss_kb=<n> hwm_kb=<n> cpu_ms=<n> reports=<n>
//
// cpu_ms includes the tools the collectors ran.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
)

func main() {
	dir := flag.String("state", "", "enrolled state dir")
	scale := flag.Int("scale", 720, "time compression: 720 runs an hour in 5 s")
	span := flag.Duration("span", time.Hour, "deployed time to simulate")
	flag.Parse()
	s := time.Duration(*scale)
	sys := posture.NewSystem("bench", posture.WithIntervals(posture.Intervals{
		Bluetooth: time.Minute / s, Slow: 15 * time.Minute / s, Patch: 6 * time.Hour / s}))
	var reports atomic.Int64
	a, err := agent.New(state.Dir{Path: *dir}, agent.WithCollector(sys),
		agent.WithPollInterval(5*time.Second/s), agent.WithReportInterval(15*time.Minute/s),
		agent.WithObserver(agent.Observer{Acked: func(string) { reports.Add(1) }}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *span/s)
	defer cancel()
	a.Run(ctx)
	// The tools the collectors run (apt-get, cryptsetup) are the agent's
	// cost too.
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	cpu := time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
	fmt.Printf("AGENT rss_kb=%d hwm_kb=%d cpu_ms=%d reports=%d\n", status("VmRSS"), status("VmHWM"), cpu.Milliseconds(), reports.Load())
}

func status(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			var n int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &n)
			return n
		}
	}
	return -1
}
