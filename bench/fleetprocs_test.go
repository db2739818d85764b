//go:build linux

package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/loadsim"
)

// binaries are the programs the fleet benchmark runs, built for the run.
type binaries struct{ server, sim, ref string }

func buildBinaries(tb testing.TB) binaries {
	tb.Helper()
	dir := tb.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/cordon-mdm/cordon/cmd/cordon-server", "github.com/cordon-mdm/cordon/cmd/cordon-sim",
		"github.com/cordon-mdm/cordon/bench/refserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build: %v\n%s", err, out)
	}
	return binaries{server: filepath.Join(dir, "cordon-server"), sim: filepath.Join(dir, "cordon-sim"), ref: filepath.Join(dir, "refserver")}
}

// proc is a child process: a server, a reference server or a simulator.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error
}

// startProc starts bin. stdout and stdin, when not nil, are handed to
// the child as they are (files, so that Wait does not wait on a copying
// goroutine); the parent closes its copies after the start.
func startProc(name string, logFile string, stdout, stdin *os.File, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stderr, cmd.Stdout = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	err = cmd.Start()
	for _, f := range []*os.File{stdout, stdin} {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM and waits, killing after timeout.
func (p *proc) stop(timeout time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// kill is kill -9, waited for.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// procStat is a process's resident memory and CPU time so far.
type procStat struct {
	rss uint64        // bytes
	cpu time.Duration // user + system
}

func readProcStat(pid int) (procStat, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStat{}, err
	}
	var st procStat
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			st.rss = kb * 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name may hold spaces; the fields after ")" are fixed.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return procStat{}, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	// USER_HZ is 100 on every Linux Go runs on.
	st.cpu = time.Duration(ut+stt) * 10 * time.Millisecond
	return st, nil
}

// simProc is one simulator process and what it has said.
type simProc struct {
	*proc
	stdin  io.WriteCloser
	acked  string // its acked-ids file
	mu     sync.Mutex
	last   loadsim.Stats
	final  *loadsim.Stats
	marks  chan loadsim.Mark
	update chan struct{} // a new stats line (buffered, may coalesce)
}

// startSim starts a simulator; every line it writes is also kept in
// linesFile, the run's timeline for a later look.
func startSim(bin, logFile, ackedFile, linesFile string, args ...string) (*simProc, error) {
	lines, err := os.Create(linesFile)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p, err := startProc("sim", logFile, pw, inR, bin, append([]string{"run", "--control", "--acked-out", ackedFile}, args...)...)
	if err != nil {
		pr.Close()
		inW.Close()
		return nil, err
	}
	s := &simProc{proc: p, stdin: inW, acked: ackedFile, marks: make(chan loadsim.Mark, 16), update: make(chan struct{}, 1)}
	go func() { <-p.done; inW.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		defer lines.Close()
		for sc.Scan() {
			line := sc.Bytes()
			lines.Write(line)
			lines.Write([]byte{'\n'})
			if strings.Contains(string(line), `"mark"`) {
				var m loadsim.Mark
				if json.Unmarshal(line, &m) == nil {
					s.marks <- m
				}
				continue
			}
			var st loadsim.Stats
			if json.Unmarshal(line, &st) != nil {
				continue
			}
			s.mu.Lock()
			s.last = st
			if st.Final {
				s.final = &st
			}
			s.mu.Unlock()
			select {
			case s.update <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, pr)
		pr.Close()
	}()
	return s, nil
}

func (s *simProc) send(line string) { fmt.Fprintln(s.stdin, line) }

func (s *simProc) stats() loadsim.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// sims is all simulator processes of a run.
type sims []*simProc

func (ss sims) send(line string) {
	for _, s := range ss {
		s.send(line)
	}
}

func (ss sims) total() loadsim.Stats {
	var t loadsim.Stats
	for _, s := range ss {
		st := s.stats()
		t.Agents += st.Agents
		t.Started += st.Started
		t.Connected += st.Connected
		t.Connects += st.Connects
		t.Drops += st.Drops
		t.Failed += st.Failed
		t.Refused += st.Refused
		t.Sent += st.Sent
		t.Acked += st.Acked
		t.Commands += st.Commands
	}
	return t
}

// marks asks every simulator for a mark and collects the answers.
func (ss sims) marks(name string, timeout time.Duration) ([]loadsim.Mark, error) {
	ss.send("mark " + name)
	var out []loadsim.Mark
	for _, s := range ss {
		select {
		case m := <-s.marks:
			out = append(out, m)
		case <-time.After(timeout):
			return out, fmt.Errorf("a simulator did not answer mark %s", name)
		}
	}
	return out, nil
}

// stopAll asks every simulator to stop and waits for it to exit.
func (ss sims) stopAll(timeout time.Duration) {
	ss.send("stop")
	deadline := time.After(timeout)
	for _, s := range ss {
		select {
		case <-s.done:
		case <-deadline:
			s.kill()
		}
	}
}

// counter reads how many agents a server process holds.
type counter func(ctx context.Context) (int, error)

var insecure = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
	// The harness reads its own servers' metrics on loopback; it pins
	// nothing because it is not what is measured.
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// cordonCount reads cordon_gateway_connections from /metrics.
func cordonCount(consoleURL, apiKey string) counter {
	return func(ctx context.Context) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, consoleURL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := insecure.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("/metrics: %s", resp.Status)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "cordon_gateway_connections "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				return int(f), err
			}
		}
		return 0, errors.New("no cordon_gateway_connections in /metrics")
	}
}

// refCount reads the reference server's GET /count.
func refCount(url string) counter {
	return func(ctx context.Context) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := insecure.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
}

// waitReady waits until url answers anything over HTTPS.
func waitReady(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		default:
		}
		if resp, err := insecure.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within %v", p.name, url, timeout)
}
