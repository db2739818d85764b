// Command cordon-agent enrolls this device and keeps it connected to the
// Cordon server. It links no server code (a test enforces it).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/selfupdate"
	"github.com/cordon-mdm/cordon/agent/service"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/helptext"
	"github.com/cordon-mdm/cordon/internal/version"
)

const usage = helptext.Agent

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cordon-agent:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "enroll":
		return enroll(args[1:], stdout, stderr)
	case "run":
		return runAgent(args[1:], stderr)
	case "status":
		return status(args[1:], stdout)
	case "report":
		return report(args[1:], stdout)
	case "bt":
		return bluetooth(args[1:], stdout)
	case "tray":
		return runTray(args[1:], stderr)
	case "wipe":
		return wipePlan(args[1:], stdout)
	case selfupdate.WatchdogCommand: // hidden: an update's watchdog
		return updateWatchdog(args[1:], stderr)
	case "install":
		return install(args[1:], stdout, stderr)
	case "uninstall":
		return uninstall(args[1:], stdout)
	case "version", "-v", "--version":
		version.Fprint(stdout, "cordon-agent")
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func enroll(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent enroll", flag.ContinueOnError)
	srv := fs.String("server", "", "https://HOST:PORT of the Cordon server's console listener")
	token := fs.String("token", "", "enrollment token from IT")
	fp := fs.String("ca-fingerprint", "", "SHA-256 of the server's root CA (cordon-server ca fingerprint); empty trusts on first use")
	dir := fs.String("state", state.Default(), "state directory")
	keys := addKeyFlags(fs)
	fromFile := fs.String("from-file", "", "read --server, --ca-fingerprint and --token from this enrollment file (what an agent package installs); does nothing when already enrolled")
	fipsMode := fipsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sd, err := keys.dir(*dir)
	if err != nil {
		return err
	}
	if *fromFile != "" {
		if *srv != "" || *token != "" || *fp != "" {
			return errors.New("--from-file takes the server, token and fingerprint from the file: give none of them as flags")
		}
		return enrollFromFile(*fromFile, sd, *fipsMode, stdout, stderr)
	}
	if *srv == "" || *token == "" {
		return errors.New("--server and --token (or --from-file) are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := enrollment.Enroll(ctx, enrollment.Request{Server: *srv, Token: *token, Fingerprint: *fp,
		State: sd, Facts: posture.Facts(ctx, version.Version), FIPS: *fipsMode})
	if err != nil {
		return err
	}
	if res.TrustedOnFirst {
		fmt.Fprintf(stderr, "WARNING: no --ca-fingerprint given; trusted the server's root CA on first use.\n"+
			"         Its fingerprint is %s; check it against `cordon-server ca fingerprint` on the server.\n", res.Config.RootFingerprint)
	}
	fmt.Fprintf(stdout, "enrolled as device %s\ngateway %s\nstate %s\nkey store %s\n", res.Config.DeviceID, res.Config.GatewayURL, *dir, res.Config.KeyStoreKind())
	return nil
}

func runAgent(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent run", flag.ContinueOnError)
	dir := fs.String("state", state.Default(), "state directory")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	socket := fs.String("socket", "", "local socket for the tray and `cordon-agent report` (default "+state.DefaultSocket("STATE")+")")
	keys := addKeyFlags(fs)
	fipsMode := fipsFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sd, err := keys.dir(*dir)
	if err != nil {
		return err
	}
	if *socket == "" {
		*socket = state.DefaultSocket(*dir)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	opts := []agent.Option{agent.WithLogger(logger), agent.WithVersion(version.Version), agent.WithFIPS(*fipsMode)}
	// Only the real binary replaces itself on an update command, and
	// only when it knows where it runs from.
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			opts = append(opts, agent.WithSelfUpdate(exe, os.Args, os.Stderr))
		}
	}
	a, err := agent.New(sd, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("cordon agent starting", "device_id", a.DeviceID(), "version", version.Version, "fips_mode", *fipsMode)
	// Without the socket the agent still reports and obeys the server;
	// only the tray and local reports are unavailable, so say so and go on.
	ln, err := localapi.Listen(*socket)
	if err != nil {
		logger.Warn("local socket unavailable: the tray and `cordon-agent report` cannot reach this agent", "socket", *socket, "err", err)
	} else {
		defer os.Remove(*socket)
		go localapi.Serve(ctx, ln, a, logger)
	}
	// Under the Windows SCM the service package answers its stop
	// request (and exits for the SCM's recovery when the agent ends by
	// itself, an update's restart included).
	err = service.Run(ctx, a.Run)
	if !errors.Is(err, agent.ErrRestart) {
		return err
	}
	// A new build is in place: the socket goes (an exec runs no
	// defers), then the restart, which does not return in the
	// foreground.
	if ln != nil {
		ln.Close()
		os.Remove(*socket)
	}
	exe, rargs := a.RestartExe()
	logger.Info("restarting into the updated build", "exe", exe, "service", selfupdate.ServiceName())
	if err := selfupdate.Restart(exe, rargs); err != nil {
		return fmt.Errorf("restart into the updated build: %w", err)
	}
	os.Exit(selfupdate.ExitRestart) // the service manager restarts it
	return nil
}

// updateWatchdog is the hidden subcommand the previous build's copy runs
// as during an update (selfupdate.RunWatchdog).
func updateWatchdog(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent "+selfupdate.WatchdogCommand, flag.ContinueOnError)
	dir := fs.String("state", state.Default(), "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil)).With("role", "update-watchdog")
	return selfupdate.RunWatchdog(context.Background(), *dir, logger)
}

func status(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent status", flag.ContinueOnError)
	dir := fs.String("state", state.Default(), "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := state.Dir{Path: *dir}
	cfg, err := d.LoadConfig()
	if err != nil {
		return err
	}
	st, err := d.LoadStatus()
	if err != nil {
		return err
	}
	out := map[string]any{"device_id": cfg.DeviceID, "server": cfg.ServerURL, "gateway": cfg.GatewayURL,
		"enrolled_at": cfg.EnrolledAt, "root_fingerprint": cfg.RootFingerprint, "key_store": cfg.KeyStoreKind(), "connection": st.Connection,
		"since": st.Since, "last_error": st.LastError, "spooled_reports": st.Spooled,
		"certificate_expires": st.CertExpires, "last_ack_at": st.LastAckAt, "last_posture": st.LastPosture}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// fipsFlag is --fips, on by default in FIPS builds (make build-fips).
func fipsFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("fips", fips.Default(), "restrict TLS to FIPS 140-3 approved algorithms; refuse to start unless the FIPS module is active")
}

// wipePlan prints what a remote wipe would erase on this device. The agent
// never wipes on a local command: only a signed command from the server
// does that.
func wipePlan(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cordon-agent wipe", flag.ContinueOnError)
	dir := fs.String("state", state.Default(), "state directory")
	plan := fs.Bool("plan", false, "print the wipe plan")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*plan {
		return errors.New("only --plan is available: a wipe runs only on a signed command from the server")
	}
	cfg, err := actions.LoadWipeConfig(filepath.Join(*dir, agent.WipeConfigFile))
	if err != nil {
		return err
	}
	p, err := actions.New(cfg).Plan(context.Background())
	fmt.Fprint(stdout, p.String())
	return err
}
