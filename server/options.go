package server

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/ratelimit"
	"github.com/cordon-mdm/cordon/server/review"
)

// Defaults from INTERFACE.md.
const (
	DefaultDataDir     = "./cordon-data"
	DefaultListen      = "127.0.0.1:8443"
	DefaultAgentListen = "127.0.0.1:8444"
)

type config struct {
	dataDir, listen, agentListen, database string
	hostnames                              []string
	agentBuilds                            agentpkg.AgentBuilds
	guessLimit                             int
	guessWindow                            time.Duration
	guessClock                             func() time.Time
	log                                    *slog.Logger
	deviceLifetime                         time.Duration
	pingInterval                           time.Duration
	historyLimit                           int
	fips                                   bool
	smtpURL                                *url.URL
	smtpFrom                               string
	sweepEvery                             time.Duration
	playbook                               incidents.Playbook
	csaISO                                 string
	webhookURL                             *url.URL
	webhookSecret                          []byte
	incidentClock                          func() time.Time
	complianceClock                        func() time.Time
	consoleClock                           func() time.Time
	reviewInterval                         time.Duration
	reviewClock                            func() time.Time
	lockout                                auth.LockoutPolicy
	banner                                 string
	auditRetention                         time.Duration
	checkpointEvery                        time.Duration
	auditClock                             func() time.Time
	// noAppleMDM: the zero value serves Apple MDM under /mdm.
	noAppleMDM bool
	// apnsURL and apnsRoots replace Apple's APNs gateway (WithAPNs).
	apnsURL   string
	apnsRoots *x509.CertPool
	// lostMode is what a device in Apple lost mode shows
	// (WithLostModeMessage); empty message: applemdm's default.
	lostModeMessage, lostModePhone string
	// appleLockMessage and appleLockPhone are what a locked Apple device
	// shows (WithAppleLockNotice).
	appleLockMessage, appleLockPhone string
	// appleQueryInterval: 0 is applemdm.DefaultQueryInterval.
	appleQueryInterval time.Duration
	// handshakes bound the agent listener's handshakes (tls.go).
	handshakes handshakeConfig
	// ekRoots are the TPM manufacturers' EK roots (WithTPMEKRoots).
	ekRoots *x509.CertPool
	// agentUpdateDeadline: 0 is releases' default (5 minutes).
	agentUpdateDeadline time.Duration
}

// Option configures a Server.
type Option func(*config) error

// defaults are the settings options start from, safe to run with.
func defaults() config {
	lockout, _ := auth.Lockout("")
	return config{lockout: lockout, dataDir: DefaultDataDir, listen: DefaultListen, agentListen: DefaultAgentListen,
		log: slog.New(slog.DiscardHandler), deviceLifetime: pki.DefaultDeviceLifetime, pingInterval: 30 * time.Second, historyLimit: 500, fips: fips.Default(), sweepEvery: 15 * time.Second, smtpFrom: "cordon@localhost",
		guessLimit: ratelimit.DefaultLimit, guessWindow: ratelimit.DefaultWindow,
		auditRetention: audit.DefaultRetention, checkpointEvery: time.Hour}
}

// WithAgentUpdateDeadline sets how long a new agent build has, after it
// restarts, to connect before the old one comes back by itself (default
// 5 minutes; at least 10 s, at most 24 h).
func WithAgentUpdateDeadline(d time.Duration) Option {
	return func(c *config) error {
		if d != 0 && (d < 10*time.Second || d > 24*time.Hour) {
			return fmt.Errorf("--agent-update-deadline must be between 10s and 24h, got %v", d)
		}
		c.agentUpdateDeadline = d
		return nil
	}
}

// WithFIPS restricts both listeners to what FIPS 140-3 mode allows (see
// internal/fips). It defaults to on in FIPS builds; New refuses it when
// the process does not run the frozen module.
func WithFIPS(on bool) Option { return func(c *config) error { c.fips = on; return nil } }

// WithSMTP sends incident notifications through the SMTP server at rawURL
// (smtp://[user:pass@]host:port), from the address from.
func WithSMTP(rawURL, from string) Option {
	return func(c *config) error {
		if rawURL == "" {
			return nil
		}
		u, err := url.Parse(rawURL)
		if err != nil || u.Scheme != "smtp" || u.Host == "" {
			return fmt.Errorf("--smtp-url must be smtp://host:port, got %q", rawURL)
		}
		c.smtpURL, c.smtpFrom = u, from
		return nil
	}
}

// WithPlaybook loads the incident playbook (rule → actions, JSON) from
// path; rules it leaves out keep incidents.DefaultPlaybook.
func WithPlaybook(path string) Option {
	return func(c *config) error {
		if path == "" {
			return nil
		}
		p, err := incidents.LoadPlaybook(path)
		c.playbook = p
		return err
	}
}

// WithCSAISO adds the CSA ISO's address to the notifications of every
// loss or compromise outside the United States, as the policy requires.
func WithCSAISO(email string) Option {
	return func(c *config) error {
		if email != "" && !strings.Contains(email, "@") {
			return fmt.Errorf("--csa-iso-email: %q is not an email address", email)
		}
		c.csaISO = email
		return nil
	}
}

// WithWebhook posts every incident notification as JSON to rawURL,
// signed with HMAC-SHA256 under the secret read from secretFile.
func WithWebhook(rawURL, secretFile string) Option {
	return func(c *config) error {
		if rawURL == "" {
			return nil
		}
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--webhook-url must be an http(s) URL, got %q", rawURL)
		}
		if secretFile == "" {
			return errors.New("--webhook-url needs --webhook-secret-file: receivers must be able to verify the signature")
		}
		secret, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("--webhook-secret-file: %w", err)
		}
		secret = bytes.TrimSpace(secret)
		if len(secret) < 16 {
			return errors.New("--webhook-secret-file: the secret must be at least 16 bytes")
		}
		c.webhookURL, c.webhookSecret = u, secret
		return nil
	}
}

// WithIncidentClock replaces the clock incidents are timed by (tests:
// the 15-minute line without waiting 15 minutes).
func WithIncidentClock(now func() time.Time) Option {
	return func(c *config) error { c.incidentClock = now; return nil }
}

// WithAuditReviewInterval sets how often the audit review (AU-6, agency
// policy F.2) is produced: weekly by default, shorter when the threat
// level rises (F.3); at least one hour.
func WithAuditReviewInterval(d time.Duration) Option {
	return func(c *config) error {
		if d == 0 {
			return nil
		}
		if d < review.MinInterval {
			return fmt.Errorf("--audit-review-interval: %v is shorter than the minimum of %v", d, review.MinInterval)
		}
		c.reviewInterval = d
		return nil
	}
}

// WithReviewClock replaces the clock audit reviews are produced and
// judged overdue by (tests: a week without waiting a week).
func WithReviewClock(now func() time.Time) Option {
	return func(c *config) error { c.reviewClock = now; return nil }
}

// WithConsoleClock replaces the clock of console sign-in: lockouts, the
// idle lock and TOTP codes (tests).
func WithConsoleClock(now func() time.Time) Option {
	return func(c *config) error { c.consoleClock = now; return nil }
}

// WithLoginLockout picks the failed sign-in rule: "v6" (default: locked
// until an it-admin unlocks) or "v5.8" (locked for 10 minutes).
func WithLoginLockout(rule string) Option {
	return func(c *config) error {
		p, err := auth.Lockout(rule)
		c.lockout = p
		return err
	}
}

// WithBannerFile replaces the console's system-use notification with the
// agency's text, read from path.
func WithBannerFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--banner-file: %w", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return errors.New("--banner-file is empty: the system-use notification cannot be blank")
		}
		c.banner = string(b)
		return nil
	}
}

// WithComplianceClock replaces the clock grace periods run on (tests).
func WithComplianceClock(now func() time.Time) Option {
	return func(c *config) error { c.complianceClock = now; return nil }
}

// WithSweepInterval sets how often time-driven work runs (escalations,
// silent devices, expired commands, the notification outbox); default 15 s.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) error { c.sweepEvery = d; return nil }
}

// WithAuditRetention keeps audit entries for d (AU-11); older ones are
// pruned up to a signed checkpoint. Below one year (8760h) the server
// does not start.
func WithAuditRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < audit.MinRetention {
			return fmt.Errorf("--audit-retention %v is shorter than one year (8760h): the CJIS Security Policy (AU-11) keeps audit records at least a year, so the server does not start", d)
		}
		c.auditRetention = d
		return nil
	}
}

// WithAuditCheckpointInterval sets how often the audit chain's head is
// signed (AU-9); default hourly. A checkpoint is also signed at start,
// at shutdown and on demand (cordon-server audit checkpoint).
func WithAuditCheckpointInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("--audit-checkpoint-interval %v: must be at least 1s", d)
		}
		c.checkpointEvery = d
		return nil
	}
}

// WithAuditClock replaces the clock audit entries, checkpoints and
// retention run on (tests: a year of entries without waiting a year).
func WithAuditClock(now func() time.Time) Option {
	return func(c *config) error { c.auditClock = now; return nil }
}

// WithDataDir sets the data dir (CA, keys, SQLite).
func WithDataDir(d string) Option { return func(c *config) error { c.dataDir = d; return nil } }

// WithListen sets the console/API listen address.
func WithListen(a string) Option { return func(c *config) error { c.listen = a; return nil } }

// WithAgentListen sets the agent gateway listen address.
func WithAgentListen(a string) Option { return func(c *config) error { c.agentListen = a; return nil } }

// WithDatabase sets the database URL ("" is SQLite in the data dir).
func WithDatabase(u string) Option { return func(c *config) error { c.database = u; return nil } }

// WithGuessClock replaces the clock the guess limit's windows are timed
// by (tests: a window that cannot end while the test is still guessing,
// however slow the machine).
func WithGuessClock(now func() time.Time) Option {
	return func(c *config) error { c.guessClock = now; return nil }
}

// WithHostnames adds names (DNS or IP) agents use to reach the server;
// the first one is used in the gateway URL given to enrolling agents.
func WithHostnames(h ...string) Option {
	return func(c *config) error { c.hostnames = append(c.hostnames, h...); return nil }
}

// WithGuessLimit sets how many failed enrollment tokens, and separately
// how many failed API keys, one source address may send per window
// before it is answered 429 (default ratelimit.DefaultLimit per
// ratelimit.DefaultWindow).
func WithGuessLimit(n int, window time.Duration) Option {
	return func(c *config) error {
		if n < 1 || window <= 0 {
			return fmt.Errorf("guess limit: need at least 1 per positive window, got %d per %v", n, window)
		}
		c.guessLimit, c.guessWindow = n, window
		return nil
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *config) error { c.log = l; return nil } }

// WithDeviceCertLifetime sets the lifetime of device certificates.
func WithDeviceCertLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return errors.New("device certificate lifetime too short")
		}
		c.deviceLifetime = d
		return nil
	}
}

// WithPingInterval sets the gateway keepalive interval.
func WithPingInterval(d time.Duration) Option {
	return func(c *config) error { c.pingInterval = d; return nil }
}

// WithHistoryLimit bounds posture history per device.
func WithHistoryLimit(n int) Option { return func(c *config) error { c.historyLimit = n; return nil } }

// WithAppleMDM serves Apple's MDM protocol (nanomdm) under /mdm on the
// console listener; on by default. Its state lives in <data-dir>/apple-mdm.
func WithAppleMDM(on bool) Option { return func(c *config) error { c.noAppleMDM = !on; return nil } }

// WithAPNs sends Apple MDM pushes to url, trusting roots, instead of
// Apple's production APNs: Apple's development gateway, or a recording
// endpoint in tests.
func WithAPNs(url string, roots *x509.CertPool) Option {
	return func(c *config) error { c.apnsURL, c.apnsRoots = url, roots; return nil }
}

// WithLostModeMessage sets what a supervised Apple device in lost mode
// shows: the agency's message (empty: Cordon's default, which names no
// agency) and the phone number to call.
func WithLostModeMessage(message, phone string) Option {
	return func(c *config) error {
		if err := input.First(input.FreeText("--lost-mode-message", message, 512), input.Text("--lost-mode-phone", phone, 64)); err != nil {
			return err
		}
		c.lostModeMessage, c.lostModePhone = message, phone
		return nil
	}
}

// WithAppleLockNotice sets what an iPhone, iPad or Mac locked by a lock
// command shows: message (default applemdm.DefaultLockMessage) and a
// phone number to call (none by default).
func WithAppleLockNotice(message, phone string) Option {
	return func(c *config) error {
		if err := input.First(input.FreeText("--apple-lock-message", message, 256), input.Text("--apple-lock-phone", phone, 64)); err != nil {
			return err
		}
		c.appleLockMessage, c.appleLockPhone = message, phone
		return nil
	}
}

// WithTPMEKRoots reads the TPM manufacturers' EK root certificates from
// path, a PEM bundle: a TPM device whose EK certificate chains to one is
// recorded tpm-attested. Without roots ("" path), TPM devices that pass
// every other check are tpm-unverified, their EK trusted on first use.
func WithTPMEKRoots(path string) Option {
	return func(c *config) error {
		if path == "" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--tpm-ek-roots: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return fmt.Errorf("--tpm-ek-roots %s: no PEM certificate in it", path)
		}
		c.ekRoots = pool
		return nil
	}
}
