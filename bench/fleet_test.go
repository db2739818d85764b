//go:build linux

package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fleetConfig is a fleet benchmark's size, from the environment (the
// Makefile's bench and bench-full set it).
type fleetConfig struct {
	agents    int    // BENCH_AGENTS
	servers   int    // BENCH_SERVERS: server processes, the agents split evenly
	database  string // BENCH_DATABASE: postgres://...; empty is SQLite (one per process)
	perSim    int    // BENCH_PER_SIM: agents per simulator process
	ramp      int    // BENCH_RAMP: agents connecting at once, all simulators together
	commands  int    // BENCH_COMMANDS: lock commands timed
	cache     string // BENCH_CACHE: where enrolled fleets are kept (default /dev/shm/cordon-bench)
	basePort  int    // BENCH_PORT: server k listens on basePort+2k (console), +1 (gateway)
	idle      time.Duration
	connWait  time.Duration // BENCH_CONNECT_WAIT: how long the first connect may take
	stormWait time.Duration
	lockEvery time.Duration
	profile   string // BENCH_PROFILE: directory for the servers' CPU and heap profiles
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func fleetConfigFromEnv() fleetConfig {
	cache := os.Getenv("BENCH_CACHE")
	if st, err := os.Stat("/dev/shm"); cache == "" && err == nil && st.IsDir() {
		// Each deployed agent has a disk of its own; thousands of them
		// fsyncing their spools on the server's one disk would measure
		// the disk. In memory, the simulator's writes cost only CPU.
		cache = "/dev/shm/cordon-bench"
	}
	if cache == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "cordon-bench")
		} else {
			cache = filepath.Join(os.TempDir(), "cordon-bench")
		}
	}
	return fleetConfig{agents: envInt("BENCH_AGENTS", 2000), servers: envInt("BENCH_SERVERS", 1),
		database: os.Getenv("BENCH_DATABASE"), perSim: envInt("BENCH_PER_SIM", 10000), ramp: envInt("BENCH_RAMP", 64),
		commands: envInt("BENCH_COMMANDS", 200), cache: cache, basePort: envInt("BENCH_PORT", 18440),
		idle: envDuration("BENCH_IDLE", 20*time.Second), connWait: envDuration("BENCH_CONNECT_WAIT", 10*time.Minute), stormWait: envDuration("BENCH_STORM_WAIT", 5*time.Minute),
		lockEvery: envDuration("BENCH_LOCK_EVERY", 30*time.Minute), profile: os.Getenv("BENCH_PROFILE")}
}

func (c fleetConfig) consoleAddr(k int) string { return fmt.Sprintf("127.0.0.1:%d", c.basePort+2*k) }
func (c fleetConfig) agentAddr(k int) string   { return fmt.Sprintf("127.0.0.1:%d", c.basePort+2*k+1) }

// group is server k's agents: [first, first+count).
func (c fleetConfig) group(k int) (first, count int) {
	per := c.agents / c.servers
	first = k * per
	if k == c.servers-1 {
		return first, c.agents - first
	}
	return first, per
}

// serverOf is the server process agent i enrolled with and connects to.
func (c fleetConfig) serverOf(i int) int {
	for k := c.servers - 1; k > 0; k-- {
		if first, _ := c.group(k); i >= first {
			return k
		}
	}
	return 0
}

// BenchmarkFleet is `make bench`: the real cordon-server binary, each
// process on its own, against a fleet of real agents in separate
// simulator processes (cmd/cordon-sim), and the same fleet against a bare
// gorilla/websocket + crypto/tls server with the same mutual TLS
// (bench/refserver), one after the other in the same run. It prints one
// table; see the README's performance section.
//
// One iteration is one full measurement whatever b.N is; run it with
// -benchtime 1x.
func BenchmarkFleet(b *testing.B) {
	c := fleetConfigFromEnv()
	if c.agents < c.servers {
		b.Fatalf("BENCH_AGENTS=%d is fewer than BENCH_SERVERS=%d", c.agents, c.servers)
	}
	if c.servers > 1 && c.database == "" {
		b.Log("several server processes with SQLite: each has its own database and its own share of the agents")
	}
	bins := buildBinaries(b)
	fx := prepareFleet(b, c, bins)
	b.ResetTimer()
	for range b.N {
		ref := measureFleet(b, c, bins, fx, false)
		cor := measureFleet(b, c, bins, fx, true)
		printTable(os.Stdout, c, ref, cor)
		profiler{c: c, dir: c.profile}.summary(b, bins.server)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(cor.held), "agents")
		b.ReportMetric(cor.memPerAgent, "server-B/agent")
		b.ReportMetric(cor.memPerAgent/ref.memPerAgent, "mem-ratio")
		b.ReportMetric(cor.connectRate, "conn/s")
		b.ReportMetric(cor.cmdP99.Seconds()*1000, "cmd-p99-ms")
		b.ReportMetric(cor.ingestRate, "reports/s")
		b.ReportMetric(cor.storm99.Seconds(), "storm-99%-s")
	}
}

// fleetResult is one server kind's column of the table.
type fleetResult struct {
	cordon             bool
	held               int
	memPerAgent        float64 // bytes of server RSS per idle agent
	connectRate        float64 // agents per second, first start
	connectTime        time.Duration
	cmdP50, cmdP99     time.Duration
	cmdCount           int
	ingestRate         float64 // reports acknowledged per second in the burst
	ingestP99          time.Duration
	ingestCount        int
	storm50, storm99   time.Duration // from kill -9 to that share reconnected
	storm100           time.Duration
	stormDone          bool // all were back within the wait
	stormShare         float64
	failedHandshakes   int64
	refusedConnects    int64
	reportsAcked       int
	reportsLost        int
	lostChecked        bool
	cpuPerAgent        float64 // CPU seconds per second per idle agent
	simCPUPerAgent     float64
	serverBaseRSS      uint64
	commandsAnswered   int64
	load               string // the machine's load average when the run started
	notes              []string
	serverLogs, simLog string
}

// servers is the server processes of a run, restartable.
type servers struct {
	c      fleetConfig
	bins   binaries
	fx     *fixture
	cordon bool
	data   []string
	procs  []*proc
	count  []counter
	log    string
}

// start starts server k and waits up to ready for it to answer. A
// process that started but did not answer in time is kept (the storm
// goes on measuring it), with the error.
func (s *servers) start(k int, ready time.Duration) error {
	var p *proc
	var err error
	if s.cordon {
		p, err = startProc(fmt.Sprintf("cordon-server-%d", k), s.log, nil, nil, s.bins.server, serverArgs(s.c, k, s.data[k])...)
		if err == nil {
			s.procs[k] = p
			err = waitReady(p, "https://"+s.c.consoleAddr(k)+"/", ready)
		}
		s.count[k] = cordonCount("https://"+s.c.consoleAddr(k), s.fx.apiKeys[k])
	} else {
		// The reference prints the address of its counter first.
		r, w, perr := os.Pipe()
		if perr != nil {
			return perr
		}
		p, err = startProc(fmt.Sprintf("refserver-%d", k), s.log, w, nil, s.bins.ref, "--listen", s.c.agentAddr(k),
			"--cert", s.fx.refCert, "--key", s.fx.refKey, "--client-ca", s.fx.refCA)
		if err == nil {
			line, rerr := bufio.NewReader(r).ReadString('\n')
			url, ok := strings.CutPrefix(strings.TrimSpace(line), "STATUS ")
			if rerr != nil || !ok {
				err = fmt.Errorf("refserver said %q (%v)", line, rerr)
			}
			s.count[k] = refCount(url)
		}
		r.Close()
	}
	if p != nil {
		s.procs[k] = p
	}
	return err
}

func (s *servers) held(ctx context.Context) int {
	n := 0
	for _, cnt := range s.count {
		if v, err := cnt(ctx); err == nil {
			n += v
		}
	}
	return n
}

func (s *servers) stat() procStat {
	var t procStat
	for _, p := range s.procs {
		if st, err := readProcStat(p.cmd.Process.Pid); err == nil {
			t.rss += st.rss
			t.cpu += st.cpu
		}
	}
	return t
}

func measureFleet(b *testing.B, c fleetConfig, bins binaries, fx *fixture, cordon bool) *fleetResult {
	ctx := context.Background()
	run, err := os.MkdirTemp("", "cordon-bench-run-")
	if err != nil {
		b.Fatal(err)
	}
	// BENCH_KEEP=1 keeps the logs, data and timelines for a look after.
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(run)
	}
	kind := "reference"
	if cordon {
		kind = "cordon"
	}
	res := &fleetResult{cordon: cordon, load: loadAverage()}
	prof := profiler{c: c}
	if cordon {
		prof.dir = c.profile
	}
	srv := &servers{c: c, bins: bins, fx: fx, cordon: cordon, procs: make([]*proc, c.servers), count: make([]counter, c.servers),
		log: filepath.Join(run, kind+"-server.log")}
	res.serverLogs = srv.log
	for k := range c.servers {
		data := filepath.Join(run, fmt.Sprintf("data-%d", k))
		if out, err := exec.Command("cp", "-a", fx.templates[k], data).CombinedOutput(); err != nil {
			b.Fatalf("copy data dir: %v: %s", err, out)
		}
		srv.data = append(srv.data, data)
		if err := srv.start(k, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, p := range srv.procs {
			if p != nil {
				p.stop(2 * time.Minute)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	base := srv.stat()
	res.serverBaseRSS = base.rss
	runStart := time.Now()

	// The simulators: perSim agents each, the ramp shared out.
	nsims := (c.agents + c.perSim - 1) / c.perSim
	var ss sims
	for j := range nsims {
		first := j * c.perSim
		count := min(c.perSim, c.agents-first)
		s, err := startSim(bins.sim, filepath.Join(run, kind+"-sim.log"), filepath.Join(run, fmt.Sprintf("%s-acked-%d", kind, j)),
			filepath.Join(run, fmt.Sprintf("%s-sim-%d.jsonl", kind, j)),
			"--state", fx.agents, "--first", strconv.Itoa(first), "--count", strconv.Itoa(count), "--process", strconv.Itoa(j),
			"--duration", "2h", "--ramp", strconv.Itoa(max(1, c.ramp/nsims)), "--lock-every", c.lockEvery.String())
		if err != nil {
			b.Fatal(err)
		}
		ss = append(ss, s)
	}
	res.simLog = filepath.Join(run, kind+"-sim.log")
	defer ss.stopAll(2 * time.Minute)

	// 1. Connect: until the servers hold every agent.
	connectStart := time.Now()
	connectProfiled := prof.cpu(b, "connect", 30*time.Second)
	if !waitHeld(ctx, srv, c.agents, c.connWait, nil) {
		res.notes = append(res.notes, fmt.Sprintf("%s: only %d of %d connected within %v", kind, srv.held(ctx), c.agents, c.connWait))
	}
	res.connectTime = time.Since(connectStart)
	res.held = srv.held(ctx)
	res.connectRate = float64(res.held) / res.connectTime.Seconds()
	connectProfiled()

	// 2. Idle: memory and CPU per agent once the connect work is over.
	time.Sleep(5 * time.Second)
	simCPU := func() time.Duration {
		var t time.Duration
		for _, s := range ss {
			if st, err := readProcStat(s.cmd.Process.Pid); err == nil {
				t += st.cpu
			}
		}
		return t
	}
	idle0, simIdle0 := srv.stat(), simCPU()
	time.Sleep(c.idle)
	idle1, simIdle1 := srv.stat(), simCPU()
	res.memPerAgent = (float64(idle1.rss) - float64(base.rss)) / float64(max(res.held, 1))
	res.cpuPerAgent = (idle1.cpu - idle0.cpu).Seconds() / c.idle.Seconds() / float64(max(res.held, 1))
	res.simCPUPerAgent = (simIdle1 - simIdle0).Seconds() / c.idle.Seconds() / float64(max(res.held, 1))
	prof.heap(b, "idle")

	// 3. Commands through the real API, all agents connected.
	if cordon {
		commandsProfiled := prof.cpu(b, "commands", 10*time.Second)
		p50, p99, n, err := commandLatency(ctx, c, fx)
		commandsProfiled()
		if err != nil {
			res.notes = append(res.notes, "commands: "+err.Error())
		}
		res.cmdP50, res.cmdP99, res.cmdCount = p50, p99, n
	}

	// 4. Report ingest: every agent reports at once.
	ss.marks("before-ingest", time.Minute)
	before := ss.total().Acked
	burst := time.Now()
	ingestProfiled := prof.cpu(b, "ingest", 10*time.Second)
	ss.send("report")
	deadline := time.Now().Add(5 * time.Minute)
	for ss.total().Acked < before+int64(res.held) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the next stats line
	ingestProfiled()
	marks, err := ss.marks("ingest", time.Minute)
	if err != nil {
		res.notes = append(res.notes, err.Error())
	}
	var at99 int64
	for _, m := range marks {
		res.ingestCount += m.Acks
		at99 = max(at99, m.At99Ms)
		res.ingestP99 = max(res.ingestP99, time.Duration(m.P99ms*float64(time.Millisecond)))
	}
	if at99 > 0 {
		// Over the first 99%: the last few are agents that were
		// reconnecting, and would make this a reconnect figure.
		res.ingestRate = 0.99 * float64(res.ingestCount) / time.UnixMilli(at99).Sub(burst).Seconds()
	}

	// 5. The storm: kill -9 every server process, restart it at once,
	// and time the fleet's return.
	stormStats := ss.total()
	kill := time.Now()
	for _, p := range srv.procs {
		p.kill()
	}
	// Every process restarts at once, as after a host's power cut. One
	// slow to answer is a figure of the storm, not the end of the run:
	// the table still prints, with the note.
	startErrs := make([]error, len(srv.procs))
	var starting sync.WaitGroup
	for k := range srv.procs {
		starting.Go(func() { startErrs[k] = srv.start(k, c.stormWait) })
	}
	starting.Wait()
	for k, err := range startErrs {
		if err != nil {
			res.notes = append(res.notes, fmt.Sprintf("%s: restart of server %d: %v", kind, k, err))
		}
	}
	stormProfiled := prof.cpu(b, "storm", 30*time.Second)
	marksAt := map[float64]*time.Duration{0.5: &res.storm50, 0.99: &res.storm99, 1: &res.storm100}
	res.stormDone = waitHeld(ctx, srv, c.agents, c.stormWait, func(n int) {
		for share, d := range marksAt {
			if *d == 0 && float64(n) >= share*float64(c.agents) {
				*d = time.Since(kill)
			}
		}
	})
	res.stormShare = float64(srv.held(ctx)) / float64(c.agents)
	stormProfiled()
	after := ss.total()
	res.failedHandshakes = (after.Failed - after.Refused) - (stormStats.Failed - stormStats.Refused)
	res.refusedConnects = after.Refused - stormStats.Refused

	// 6. Stop: the simulators write what was acknowledged, then the
	// servers stop and what they stored is compared with it.
	time.Sleep(2 * time.Second) // the reports of the reconnect, acknowledged
	ss.stopAll(2 * time.Minute)
	for _, s := range ss {
		if s.final != nil {
			res.commandsAnswered += s.final.Commands
		}
	}
	for _, p := range srv.procs {
		p.stop(2 * time.Minute)
	}
	if cordon {
		acked, lost, err := lostReports(ctx, c, srv.data, ss, runStart)
		if err != nil {
			res.notes = append(res.notes, "lost reports: "+err.Error())
		} else {
			res.reportsAcked, res.reportsLost, res.lostChecked = acked, lost, true
		}
	}
	if os.Getenv("BENCH_KEEP") != "" {
		b.Logf("%s: logs, data and timelines kept in %s", kind, run)
	}
	return res
}

// waitHeld polls the servers' counts until want are held or timeout;
// each reading is passed to seen.
func waitHeld(ctx context.Context, srv *servers, want int, timeout time.Duration, seen func(int)) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := srv.held(ctx)
		if seen != nil {
			seen(n)
		}
		if n >= want {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// loadAverage is /proc/loadavg's 1-minute figure: other work on the
// machine shares the cores and distorts every figure, so the table says
// how much there was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
