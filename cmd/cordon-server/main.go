// Command cordon-server runs the Cordon server and its local admin
// commands. It only parses flags and wires the server package.
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
	"strings"
	"syscall"
	"time"

	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/internal/fdlimit"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/flagconfig"
	"github.com/cordon-mdm/cordon/internal/helptext"
	"github.com/cordon-mdm/cordon/internal/pprofserve"
	"github.com/cordon-mdm/cordon/internal/version"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/ratelimit"
)

const usage = helptext.Server

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cordon-server:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") && cmd != "serve" {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "token create":
		return tokenCreate(rest, stdout)
	case "apikey create":
		return apikeyCreate(rest, stdout)
	case "user passwd":
		return userPasswd(rest, stdout)
	case "user add":
		return userAdd(rest, stdout)
	case "user unlock":
		return userUnlock(rest, stdout)
	case "user reset-mfa":
		return userResetMFA(rest, stdout)
	case "user disable":
		return userLifecycle("user disable", rest, stdout, (*server.Admin).DisableUser, "%s disabled; their sessions have ended\n")
	case "user enable":
		return userLifecycle("user enable", rest, stdout, (*server.Admin).EnableUser, "%s enabled\n")
	case "user role":
		return userRole(rest, stdout)
	case "agent-release add":
		return agentReleaseAdd(rest, stdout)
	case "agent-release list":
		return agentReleaseList(rest, stdout)
	case "ca fingerprint":
		fs := newFlags("ca fingerprint")
		data := fs.String("data", server.DefaultDataDir, "data dir")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		fp, err := pki.ReadRootFingerprint(*data)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, fp)
		return nil
	case "audit verify":
		return auditVerify(rest, stdout)
	case "audit checkpoint":
		return auditCheckpoint(rest, stdout)
	case "audit key":
		return auditKey(rest, stdout)
	case "apple push-cert":
		return applePushCert(rest, stdout)
	case "package agent":
		return packageAgent(rest, stdout)
	case "backup":
		return backupCmd(rest, stdout)
	case "restore":
		return restoreCmd(rest, stdout)
	case "version", "-v", "--version":
		version.Fprint(stdout, "cordon-server")
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cordon-server "+name, flag.ContinueOnError)
	return fs
}

type hostList []string

func (h *hostList) String() string     { return strings.Join(*h, ",") }
func (h *hostList) Set(v string) error { *h = append(*h, v); return nil }
func (h *hostList) IsList() bool       { return true }

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	config := fs.String("config", "", "YAML file of settings named as these flags (e.g. /etc/cordon/server.yaml); a flag given here wins over the file, and an unknown key stops the server")
	data := fs.String("data", server.DefaultDataDir, "data dir (CA, keys, SQLite database)")
	listen := fs.String("listen", server.DefaultListen, "console and API listen address (HTTPS)")
	agentListen := fs.String("agent-listen", server.DefaultAgentListen, "agent gateway listen address (HTTPS, client certificate required)")
	database := fs.String("database", "", "database URL: postgres://... (default: SQLite in the data dir)")
	var hostnames hostList
	fs.Var(&hostnames, "hostname", "name agents use to reach this server (repeatable; the first goes into the gateway URL)")
	certLifetime := fs.Duration("device-cert-lifetime", 30*24*time.Hour, "lifetime of device certificates")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	smtpURL := fs.String("smtp-url", "", "SMTP server for incident email: smtp://[user:pass@]host:port (STARTTLS when offered)")
	smtpFrom := fs.String("smtp-from", "cordon@localhost", "sender address of incident email")
	csaISO := fs.String("csa-iso-email", "", "CSA ISO address, told of every loss or compromise outside the United States")
	webhookURL := fs.String("webhook-url", "", "also POST every incident notification as JSON here, signed (X-Cordon-Signature)")
	webhookSecret := fs.String("webhook-secret-file", "", "file holding the webhook's HMAC-SHA256 secret (16 bytes or more)")
	playbook := fs.String("playbook", "", "incident playbook JSON (rule → actions); rules left out keep the defaults")
	lockout := fs.String("login-lockout", "v6", "after 5 failed console sign-ins: v6 locks until an it-admin unlocks, v5.8 locks for 10 minutes")
	reviewEvery := fs.Duration("audit-review-interval", 0, "how often the audit review (AU-6) is produced and mailed to every LASO (default 168h, weekly; shorten under threat, policy F.3; at least 1h)")
	banner := fs.String("banner-file", "", "the console's system-use notification text (default: the CJIS wording)")
	lostMessage := fs.String("lost-mode-message", "", "what a supervised Apple device in lost mode shows (default: a law-enforcement device, please hand it to the police)")
	lostPhone := fs.String("lost-mode-phone", "", "the phone number a supervised Apple device in lost mode shows")
	guessLimit := fs.Int("guess-limit", ratelimit.DefaultLimit, "failed enrollment tokens (and, counted apart, API keys) one source address may send per --guess-window before it is answered 429")
	guessWindow := fs.Duration("guess-window", ratelimit.DefaultWindow, "the window of --guess-limit; refusals are audited once per source and window")
	retention := fs.Duration("audit-retention", audit.DefaultRetention, "how long audit entries are kept; older ones are pruned up to a signed checkpoint; below one year (8760h) the server does not start")
	checkpointEvery := fs.Duration("audit-checkpoint-interval", time.Hour, "how often the audit chain's head is signed into a checkpoint (also at start, at shutdown and by 'audit checkpoint')")
	lockMessage := fs.String("apple-lock-message", "", "what a locked iPhone, iPad or Mac shows (default: that it belongs to a law enforcement agency and should be returned)")
	lockPhone := fs.String("apple-lock-phone", "", "phone number a locked iPhone, iPad or Mac shows (default: none)")
	appleQueryEvery := fs.Duration("apple-query-interval", server.DefaultAppleQueryInterval, "how often each enrolled iPhone, iPad and Mac is asked for its posture (at least 1m); POST /api/v1/devices/{id}/refresh asks one at once")
	handshakes := fs.Int("handshakes-per-core", server.DefaultHandshakesPerCore, "TLS handshakes (and websocket upgrades) in progress per CPU on the agent listener; agents beyond are refused at once and told when to come back")
	fipsMode := fs.Bool("fips", fips.Default(), "restrict TLS on both listeners to FIPS 140-3 approved algorithms; refuse to start unless the FIPS module is active")
	ekRoots := fs.String("tpm-ek-roots", "", "PEM bundle of TPM manufacturers' EK root certificates: a TPM agent whose EK certificate chains to one enrolls tpm-attested (without roots TPM agents are tpm-unverified)")
	updateDeadline := fs.Duration("agent-update-deadline", 0, "how long a new agent build has, after it restarts, to connect before the old one comes back by itself (default 5m)")
	pprofListen := fs.String("pprof-listen", "", "serve Go's runtime profiles (net/http/pprof, no authentication) on this loopback address, e.g. 127.0.0.1:6060; off when empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config != "" {
		if err := flagconfig.Load(fs, *config); err != nil {
			return err
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	// Each connected agent holds a descriptor: the limit caps the fleet
	// one process can hold, so it is raised and said.
	if l, err := fdlimit.Raise(); err == nil {
		logger.Info("open files limit", "soft", l.Soft, "hard", l.Hard)
	} else if !errors.Is(err, errors.ErrUnsupported) {
		logger.Warn("open files limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *pprofListen != "" {
		l, err := pprofserve.Listen(*pprofListen)
		if err != nil {
			return err
		}
		logger.Warn("runtime profiles served without authentication", "addr", l.Addr().String())
		go func() {
			if err := pprofserve.Serve(ctx, l); err != nil {
				logger.Error("runtime profiles", "err", err)
			}
		}()
	}
	srv, err := server.New(ctx, server.WithDataDir(*data), server.WithListen(*listen), server.WithAgentListen(*agentListen),
		server.WithDatabase(*database), server.WithHostnames(hostnames...), server.WithLogger(logger),
		server.WithDeviceCertLifetime(*certLifetime), server.WithFIPS(*fipsMode), server.WithSMTP(*smtpURL, *smtpFrom),
		server.WithCSAISO(*csaISO), server.WithWebhook(*webhookURL, *webhookSecret), server.WithPlaybook(*playbook),
		server.WithLoginLockout(*lockout), server.WithBannerFile(*banner), server.WithLostModeMessage(*lostMessage, *lostPhone), server.WithGuessLimit(*guessLimit, *guessWindow),
		server.WithAuditRetention(*retention), server.WithAuditCheckpointInterval(*checkpointEvery),
		server.WithAuditReviewInterval(*reviewEvery), server.WithAppleLockNotice(*lockMessage, *lockPhone),
		server.WithAppleQueryInterval(*appleQueryEvery), server.WithHandshakeLimit(*handshakes),
		server.WithTPMEKRoots(*ekRoots), server.WithAgentUpdateDeadline(*updateDeadline))
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

// withAdmin adds the data dir and database flags to fs, parses args and
// runs do on that database; the commands' own flags are set by then.
func withAdmin(fs *flag.FlagSet, args []string, do func(context.Context, *server.Admin) error) error {
	data := fs.String("data", server.DefaultDataDir, "data dir")
	database := fs.String("database", "", "database URL (default: the one serve uses for this data dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	adm, err := server.OpenAdmin(ctx, *data, *database)
	if err != nil {
		return err
	}
	defer adm.Close()
	return do(ctx, adm)
}

func tokenCreate(args []string, stdout io.Writer) error {
	fs := newFlags("token create")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	uses := fs.Int("uses", 1, "how many enrollments it allows")
	owner := fs.String("owner", "", "email of the person the device is for")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		tok, _, err := adm.CreateToken(ctx, *ttl, *uses, *owner)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
		return nil
	})
}

func apikeyCreate(args []string, stdout io.Writer) error {
	fs := newFlags("apikey create")
	name := fs.String("name", "", "name of the key (who or what uses it)")
	role := fs.String("role", "", "it-admin, laso, auditor or user")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		key, err := adm.CreateAPIKey(ctx, *name, *role)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	})
}

// readPasswordFile reads the first line of a password file: passwords
// never go on the command line, where ps and shell history see them.
func readPasswordFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("--password-file is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(pw, "\r"), nil
}

func userPasswd(args []string, stdout io.Writer) error {
	fs := newFlags("user passwd")
	email := fs.String("email", "", "the user's email")
	pwFile := fs.String("password-file", "", "file holding the new password (first line)")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		pw, err := readPasswordFile(*pwFile)
		if err != nil {
			return err
		}
		if err := adm.SetPassword(ctx, *email, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", *email)
		return nil
	})
}

func userUnlock(args []string, stdout io.Writer) error {
	fs := newFlags("user unlock")
	email := fs.String("email", "", "the user's email")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if err := adm.UnlockUser(ctx, *email); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s unlocked\n", *email)
		return nil
	})
}

func userResetMFA(args []string, stdout io.Writer) error {
	fs := newFlags("user reset-mfa")
	email := fs.String("email", "", "the user's email")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if err := adm.ResetMFA(ctx, *email); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "second factor of %s removed; it is set up again at the next sign-in\n", *email)
		return nil
	})
}

func userLifecycle(name string, args []string, stdout io.Writer, do func(*server.Admin, context.Context, string) error, done string) error {
	fs := newFlags(name)
	email := fs.String("email", "", "the user's email")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if err := do(adm, ctx, *email); err != nil {
			return err
		}
		fmt.Fprintf(stdout, done, *email)
		return nil
	})
}

func userRole(args []string, stdout io.Writer) error {
	fs := newFlags("user role")
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", "", "it-admin, laso, auditor or user")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if err := adm.SetUserRole(ctx, *email, *role); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now has role %s; their sessions have ended\n", *email, *role)
		return nil
	})
}

func userAdd(args []string, stdout io.Writer) error {
	fs := newFlags("user add")
	email := fs.String("email", "", "the user's email")
	role := fs.String("role", "", "it-admin, laso, auditor or user")
	pwFile := fs.String("password-file", "", "file holding the password (first line)")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		pw, err := readPasswordFile(*pwFile)
		if err != nil {
			return err
		}
		if err := adm.AddUser(ctx, *email, *role, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s added with role %s\n", *email, *role)
		return nil
	})
}

func auditVerify(args []string, stdout io.Writer) error {
	fs := newFlags("audit verify")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		res, err := adm.Audit.Verify(ctx)
		if err != nil {
			return err
		}
		if err := adm.RecordTrailVerified(ctx, res); err != nil {
			return err
		}
		if !res.OK {
			fmt.Fprintf(stdout, "audit log BROKEN at entry %d: %s (%d entries verified before it)\n", *res.Broken, res.Reason, res.Entries)
			return errors.New("audit verification failed")
		}
		switch {
		case res.Checkpoint != nil:
			fmt.Fprintf(stdout, "audit log intact: %d entries, matching %d signed checkpoints, the newest of entry %d signed at %s\n",
				res.Entries, res.Checkpoints, res.Checkpoint.Seq, res.Checkpoint.Time)
		default:
			fmt.Fprintf(stdout, "audit log intact: %d entries (no signed checkpoint yet: the chain is checked on its own)\n", res.Entries)
		}
		if res.FirstSeq > 1 {
			fmt.Fprintf(stdout, "entries before %d were pruned past the retention; the oldest left links to a signed checkpoint\n", res.FirstSeq)
		}
		return nil
	})
}

func auditCheckpoint(args []string, stdout io.Writer) error {
	fs := newFlags("audit checkpoint")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		c, err := adm.AuditCheckpoint(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "checkpoint of entry %d (hash %s) signed at %s\n", c.Seq, c.Hash, c.Time.UTC().Format(auditchain.TimeLayout))
		return nil
	})
}

func auditKey(args []string, stdout io.Writer) error {
	fs := newFlags("audit key")
	return withAdmin(fs, args, func(ctx context.Context, adm *server.Admin) error {
		if adm.Anchor == nil {
			return audit.ErrNoCheckpointKey
		}
		fmt.Fprint(stdout, adm.Anchor.PublicKeyPEM())
		return nil
	})
}
