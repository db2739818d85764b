// Command cordon-sim is the load simulator: a fleet of real Cordon agents
// (the agent package's own protocol, backoff and session code) with
// simulated devices behind them, for measuring a server from outside.
//
//	cordon-sim enroll --server https://HOST:PORT --token T --ca-fingerprint HEX --state DIR --count N
//	cordon-sim run --state DIR --count N --duration 10m
//
// enroll goes through the real enrollment path (POST /enroll) with one
// multi-use token (`cordon-server token create --uses N`) and keeps every
// enrolled state dir, so a second run reuses the identities. run connects
// the agents, each from its own address in 127.0.0.0/8, and writes JSON
// lines to stdout (see internal/loadsim: a stats line every --stats, the
// marks asked for on stdin, a final line). It stops by itself after
// --duration. One process holds as many agents as its open-file limit
// allows; larger fleets are several processes over disjoint --first/--count
// ranges of the same --state dir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cordon-mdm/cordon/internal/fdlimit"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/loadsim"
	"github.com/cordon-mdm/cordon/internal/version"
)

// maxAgents bounds one process: beyond the open-file limit the agents
// could not all connect anyway.
const maxAgents = 1 << 20

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cordon-sim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: cordon-sim enroll|run [flags] (-h for the flags)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch args[0] {
	case "enroll":
		return enroll(ctx, args[1:], stdout)
	case "run":
		return runFleet(ctx, args[1:], stdin, stdout, logger)
	}
	return fmt.Errorf("unknown command %q: enroll or run", args[0])
}

func rangeFlags(fs *flag.FlagSet) (root *string, first, count *int) {
	root = fs.String("state", "", "directory of the agents' state dirs (agent-NNNNNN), kept between runs")
	first = fs.Int("first", 0, "index of this process's first agent")
	count = fs.Int("count", 100, "number of agents in this process")
	return
}

func checkRange(root string, first, count int) error {
	if root == "" {
		return errors.New("--state is required")
	}
	if first < 0 || count < 1 || count > maxAgents {
		return fmt.Errorf("--first must be ≥ 0 and --count in 1..%d", maxAgents)
	}
	return nil
}

func enroll(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordon-sim enroll", flag.ContinueOnError)
	root, first, count := rangeFlags(fs)
	serverURL := fs.String("server", "", "console URL, https://HOST:PORT")
	token := fs.String("token", "", "enrollment token with at least --count uses")
	fingerprint := fs.String("ca-fingerprint", "", "root CA SHA-256 fingerprint to pin (cordon-server ca fingerprint)")
	parallel := fs.Int("parallel", 8, "enrollments in flight at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkRange(*root, *first, *count); err != nil {
		return err
	}
	if *fingerprint == "" {
		return errors.New("--ca-fingerprint is required: a simulator does not trust on first use either")
	}
	start := time.Now()
	res, err := loadsim.Enroll(ctx, loadsim.EnrollRequest{Server: *serverURL, Token: *token, Fingerprint: *fingerprint,
		Root: *root, First: *first, Count: *count, Parallel: *parallel, Version: "sim-" + version.Version, FIPS: fips.Default()})
	elapsed := time.Since(start)
	rate := 0.0
	if res.Enrolled > 0 {
		rate = float64(res.Enrolled) / elapsed.Seconds()
	}
	fmt.Fprintf(stdout, `{"enrolled":%d,"reused":%d,"seconds":%.3f,"per_second":%.1f}`+"\n",
		res.Enrolled, res.Reused, elapsed.Seconds(), rate)
	return err
}

func runFleet(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("cordon-sim run", flag.ContinueOnError)
	root, first, count := rangeFlags(fs)
	process := fs.Int("process", 0, "this process's number, echoed in every line")
	duration := fs.Duration("duration", 10*time.Minute, "the run stops by itself after this")
	poll := fs.Duration("poll", 5*time.Minute, "agent posture poll (long, so the simulator idles cheaply)")
	report := fs.Duration("report", time.Hour, "agent periodic full report")
	lockEvery := fs.Duration("lock-every", 30*time.Minute, "mean time between a simulated user's lock changes (0: never)")
	backoffBase := fs.Duration("backoff-base", 0, "agent reconnect backoff base, with --backoff-max (default: the agent's own)")
	backoffMax := fs.Duration("backoff-max", 0, "agent reconnect backoff ceiling (default: the agent's own)")
	ramp := fs.Int("ramp", 64, "agents connecting at once at start (0: all at once)")
	statsEvery := fs.Duration("stats", time.Second, "how often a stats line is written")
	control := fs.Bool("control", false, "read control lines from stdin: report, mark NAME, stop")
	ackedOut := fs.String("acked-out", "", "file to write '<device id> <frame id>' for every acknowledged frame at the end")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkRange(*root, *first, *count); err != nil {
		return err
	}
	if l, err := fdlimit.Raise(); err == nil && l.Soft < uint64(*count)+256 {
		logger.Warn("open-file limit below the agents asked for; run several processes", "soft", l.Soft, "agents", *count)
	}
	cfg := loadsim.RunConfig{Root: *root, First: *first, Count: *count, Process: *process, Duration: *duration,
		Poll: *poll, Report: *report, LockEvery: *lockEvery, BackoffBase: *backoffBase, BackoffMax: *backoffMax,
		Ramp: *ramp, StatsEvery: *statsEvery, Version: "sim-" + version.Version, FIPS: fips.Default(), Out: stdout, Log: logger}
	if *control {
		cfg.Control = stdin
	}
	if *ackedOut != "" {
		f, err := os.OpenFile(*ackedOut, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.AckedOut = f
	}
	return loadsim.Run(ctx, cfg)
}
