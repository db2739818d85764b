// Package console is Cordon's web console: server-rendered pages for IT,
// the LASO and auditors, behind CJIS sign-in (system-use banner, password,
// TOTP, lockout, idle lock). Like the REST API its handlers are thin: they
// check the session, the role and the CSRF token, then call the same
// services the API calls. Templates and the stylesheet are embedded and
// no page runs script, so the Content-Security-Policy allows none.
package console

import (
	"context"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/keylock"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Accounts is the store's side of accounts, as New takes it: what each
// page group reads, and what sign-in counts. Changes to an account go
// through Lifecycle (server/accounts), with their audit entries.
type Accounts interface {
	SignIns
	Sessions
	UserList
}

// SignIns is what the sign-in steps read and count (login.go): the
// user, failed attempts and lockouts, used TOTP steps and recovery codes.
type SignIns interface {
	GetUserByEmail(ctx context.Context, email string) (*store.User, error)
	GetUser(ctx context.Context, id string) (*store.User, error)
	LoginFailed(ctx context.Context, id string, at time.Time, windowStart *time.Time, threshold int) (*store.User, bool, error)
	ClearLoginFailures(ctx context.Context, id string) (bool, error)
	UseTOTPStep(ctx context.Context, id string, step int64) (bool, error)
	ReplaceRecoveryCodes(ctx context.Context, id, old, new string) (bool, error)
}

// Sessions keeps the console's sessions and reads their users
// (session.go, and sign-in starting and ending one).
type Sessions interface {
	GetUser(ctx context.Context, id string) (*store.User, error)
	CreateSession(ctx context.Context, s *store.Session) error
	GetSession(ctx context.Context, id string) (*store.Session, error)
	SaveSession(ctx context.Context, s *store.Session) error
	DeleteSession(ctx context.Context, id string) (bool, error)
	SessionsIdleSince(ctx context.Context, t, created time.Time) ([]store.Session, error)
}

// UserList is what the Users page shows (users.go).
type UserList interface {
	ListUsers(ctx context.Context) ([]store.User, error)
	ListAPIKeys(ctx context.Context) ([]store.APIKey, error)
}

// Records is what the pages show, one small interface per page group.
type Records interface {
	DeviceRecords
	IncidentRecords
	BluetoothRecords
	AuditRecords
}

// DeviceRecords reads devices, their lock timelines and their commands.
type DeviceRecords interface {
	ListDevices(ctx context.Context) ([]store.Device, error)
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	DeviceCommands(ctx context.Context, deviceID string, limit int) ([]store.Command, error)
}

// IncidentRecords reads incidents, their timelines and notifications.
type IncidentRecords interface {
	ListIncidents(ctx context.Context) ([]store.Incident, error)
	GetIncident(ctx context.Context, id string) (*store.Incident, error)
	IncidentTimeline(ctx context.Context, id string) ([]store.IncidentEvent, error)
	IncidentNotifications(ctx context.Context, id string) ([]store.Notification, error)
	NotificationsForIncidents(ctx context.Context, ids []string) ([]store.Notification, error)
	// The incident picture and the response form.
	GetCommand(ctx context.Context, id string) (*store.Command, error)
	ReceiptRecords
	incidents.FormReader
}

// BluetoothRecords reads the allow-list and the requests.
type BluetoothRecords interface {
	BluetoothAllowList(ctx context.Context) ([]store.BluetoothAllow, error)
	ListBluetoothRequests(ctx context.Context) ([]store.BluetoothRequest, error)
}

// AuditRecords reads the trail's entries.
type AuditRecords interface {
	ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// Auditor records and verifies the audit trail.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
	Verify(ctx context.Context) (audit.VerifyResult, error)
}

// Commands queues remote commands.
type Commands interface {
	Issue(ctx context.Context, r commands.Request) (*store.Command, error)
	Secret(c *store.Command) string // a Mac's lock PIN, for the LASO
}

// Incidents updates incidents.
type Incidents interface {
	Update(ctx context.Context, id string, u incidents.Update) (*store.Incident, error)
	// ReportClock is IR-6's reporting clock on the service's clock.
	ReportClock(inc *store.Incident, ns []store.Notification) incidents.Reporting
	UpdateForm(ctx context.Context, id string, u incidents.FormUpdate) (*store.IncidentForm, error)
}

// Compliance answers device standing and runs the Bluetooth allow-list.
type Compliance interface {
	Standing
	BluetoothDecisions
}

// Standing answers where devices stand.
type Standing interface {
	State(ctx context.Context, deviceID string) (compliance.State, error)
	States(ctx context.Context, ds []store.Device) (map[string]compliance.State, error)
}

// BluetoothDecisions changes the allow-list and decides its requests.
type BluetoothDecisions interface {
	AddAllow(ctx context.Context, in compliance.Allow, actor, source string) (*store.BluetoothAllow, error)
	RemoveAllow(ctx context.Context, address, actor, source string) error
	Endorse(ctx context.Context, id, actor, source string) (*store.BluetoothRequest, error)
	Decide(ctx context.Context, id string, approve bool, reason string, expires *time.Time, actor, source string) (*store.BluetoothRequest, error)
}

// Credentials are the changes a user makes to their own account while
// signing in or on the password page (login.go).
type Credentials interface {
	SetPassword(ctx context.Context, id, password, actor, source string) error
	EnrollSecondFactor(ctx context.Context, id, secret, algorithm string, step int64, actor, source string) ([]string, error)
}

// UserAdmin are the Users page's changes (users.go).
type UserAdmin interface {
	Unlock(ctx context.Context, id, actor, source string) (*store.User, error)
	Disable(ctx context.Context, id, actor, source string) (*store.User, error)
	Enable(ctx context.Context, id, actor, source string) (*store.User, error)
	SetRole(ctx context.Context, id, role, actor, source string) (*store.User, error)
	CreateAPIKey(ctx context.Context, name, role, actor, source string) (string, *store.APIKey, error)
	DisableAPIKey(ctx context.Context, id, actor, source string) error
}

// Lifecycle is server/accounts: every change to a user or an API key,
// with the rules and the audit entries the API and the host commands
// share.
type Lifecycle interface {
	Credentials
	UserAdmin
}

// WithLifecycle serves the account changes: the password page, enrolling
// a second factor, and the Users page's actions. Without it the console
// shows accounts but changes none.
func WithLifecycle(l Lifecycle) Option {
	return func(c *Console) { c.credentials, c.userAdmin = l, l }
}

// Tokens issues enrollment tokens.
type Tokens interface {
	CreateToken(ctx context.Context, req enroll.TokenRequest, actor, source string) (string, time.Time, error)
}

// DefaultBanner is the system-use notification CJIS 5.5.4 asks for; an
// agency replaces it with its own wording (--banner-file).
const DefaultBanner = `You are accessing a restricted information system of a criminal justice agency. ` +
	`It is provided for authorized use only. Use of this system may be monitored, recorded and audited. ` +
	`Unauthorized use is prohibited and subject to criminal and civil penalties. ` +
	`Use of this system indicates consent to monitoring and recording.`

// IdleLimit is CJIS 5.5.5's session lock: at most 30 minutes idle;
// maxSession bounds a session however active it is.
const IdleLimit, maxSession = 30 * time.Minute, 12 * time.Hour

// Console is the web console handler, mounted at /console/.
type Console struct {
	signIn     SignIns
	sessions   Sessions
	users      UserList
	records    Records
	audit      Auditor
	commands   Commands
	incidents  Incidents
	compliance Compliance
	tokens     Tokens
	// credentials and userAdmin are nil without WithLifecycle.
	credentials Credentials
	userAdmin   UserAdmin
	reviews     Reviews
	// pushCerts is nil without WithPushCerts (apns.go).
	pushCerts PushCerts
	// appleProfiles is nil without WithAppleProfiles (appleprofile.go).
	appleProfiles AppleProfiles
	// agentPackages is nil without WithAgentPackages (agentpackages.go).
	agentPackages AgentPackages

	now     func() time.Time
	lockout auth.LockoutPolicy
	banner  string
	log     *slog.Logger

	// signIns serialises the sign-in steps of one user, so parallel
	// guesses cannot all pass the lock check before the fifth failure
	// locks the account (and a burst cannot run argon2 many times at once).
	signIns keylock.Striped

	mux    *http.ServeMux
	routes []Route
	pages  map[string]*template.Template
	timed  http.Handler // serve, timed (WithRequestMetrics, metrics.go)
}

// Route is a console page or action and the roles it admits (nil: any
// visitor, signed in or not).
type Route struct {
	Pattern string
	Roles   []string
}

// Option configures the console.
type Option func(*Console)

// WithClock replaces the clock of lockouts, idle locks and TOTP (tests).
func WithClock(now func() time.Time) Option { return func(c *Console) { c.now = now } }

// WithLockout sets the failed sign-in rule (auth.Lockout).
func WithLockout(p auth.LockoutPolicy) Option { return func(c *Console) { c.lockout = p } }

// WithBanner replaces the system-use notification text.
func WithBanner(text string) Option {
	return func(c *Console) {
		if strings.TrimSpace(text) != "" {
			c.banner = strings.TrimSpace(text)
		}
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(c *Console) { c.log = l } }

// New builds the console.
func New(accounts Accounts, records Records, auditor Auditor, cmds Commands, incs Incidents, comp Compliance, tokens Tokens, opts ...Option) *Console {
	lock, _ := auth.Lockout("")
	c := &Console{signIn: accounts, sessions: accounts, users: accounts, records: records, audit: auditor, commands: cmds, incidents: incs, compliance: comp, tokens: tokens,
		now: time.Now, lockout: lock, banner: DefaultBanner, log: slog.New(slog.DiscardHandler), mux: http.NewServeMux()}
	for _, o := range opts {
		o(c)
	}
	c.pages = parsePages()
	staff := []string{auth.RoleITAdmin, auth.RoleLASO, auth.RoleAuditor}
	anyone := []string{auth.RoleITAdmin, auth.RoleLASO, auth.RoleAuditor, auth.RoleUser}
	it, laso := auth.RoleITAdmin, auth.RoleLASO

	static, _ := fs.Sub(staticFS, "static")
	c.open("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)).ServeHTTP)
	c.open("GET /console/banner", c.bannerPage)
	c.open("POST /console/banner", c.acknowledge)
	c.open("GET /console/login", c.loginPage)
	c.open("POST /console/login", c.login)
	// Second factor and its enrollment: reached with a session whose
	// password step is done.
	c.partial("GET /console/mfa", c.mfaPage)
	c.partial("POST /console/mfa", c.mfa)
	c.partial("GET /console/mfa/enroll", c.enrollPage)
	c.partial("GET /console/mfa/qr.png", c.enrollQR)
	if c.credentials != nil {
		c.partial("POST /console/mfa/enroll", c.enrollConfirm)
	}
	c.partial("POST /console/logout", c.logout)

	c.page("GET /console/{$}", c.overview, anyone...)
	c.page("GET /console/password", c.passwordPage, anyone...)
	if c.credentials != nil {
		c.page("POST /console/password", c.changePassword, anyone...)
	}
	c.page("GET /console/devices", c.devicesPage, staff...)
	c.page("GET /console/devices/{id}", c.devicePage, staff...)
	c.page("POST /console/devices/{id}/lock", c.lockDevice, it, laso)
	c.page("POST /console/devices/{id}/bt-block", c.btBlock, it, laso)
	// Wipe is the LASO's alone, and asks for a fresh second factor.
	c.page("POST /console/devices/{id}/wipe", c.wipeDevice, laso)
	c.page("GET /console/incidents", c.incidentsPage, staff...)
	c.page("GET /console/incidents/{id}", c.incidentPage, staff...)
	c.page("POST /console/incidents/{id}", c.updateIncident, laso)
	c.page("GET /console/incidents/{id}/form", c.incidentForm, staff...)
	c.page("POST /console/incidents/{id}/form", c.updateIncidentForm, laso)
	c.page("GET /console/bluetooth", c.bluetoothPage, staff...)
	c.page("POST /console/bluetooth/allowlist", c.addAllow, it)
	c.page("POST /console/bluetooth/allowlist/{address}/delete", c.deleteAllow, it)
	c.page("POST /console/bluetooth/requests/{id}/approve", c.decideRequest(true), it)
	c.page("POST /console/bluetooth/requests/{id}/deny", c.decideRequest(false), it)
	// Any signed-in user may endorse; the service admits only the
	// supervisor the request names.
	c.page("POST /console/bluetooth/requests/{id}/endorse", c.endorseRequest, anyone...)
	c.page("GET /console/audit", c.auditPage, auth.RoleAuditor, laso)
	c.page("GET /console/reviews", c.reviewsPage, auth.RoleAuditor, laso)
	c.page("POST /console/reviews/{id}", c.recordReview, laso)
	c.page("GET /console/users", c.usersPage, it)
	if c.userAdmin != nil {
		c.page("POST /console/users/{id}/unlock", c.unlockUser, it)
		c.page("POST /console/users/{id}/disable", c.disableUser, it)
		c.page("POST /console/users/{id}/enable", c.enableUser, it)
		c.page("POST /console/users/{id}/role", c.setUserRole, it)
		c.page("POST /console/apikeys", c.createAPIKey, it)
		c.page("POST /console/apikeys/{id}/disable", c.disableAPIKey, it)
	}
	c.page("GET /console/tokens", c.tokensPage, it)
	c.page("POST /console/tokens", c.createToken, it)
	if c.appleProfiles != nil {
		c.page("POST /console/tokens/apple-profile", c.appleProfile, it)
	}
	if c.agentPackages != nil {
		c.page("POST /console/tokens/agent-package", c.agentPackage, it)
	}
	if c.pushCerts != nil {
		c.page("GET /console/apple/push-cert", c.apnsPage, it)
		c.page("POST /console/apple/push-cert", c.uploadPushCert, it)
	}
	return c
}

// Routes are the console's patterns and who may use each.
func (c *Console) Routes() []Route { return slices.Clone(c.routes) }

// serve serves with the headers every console response carries: no
// script at all, no framing, nothing cached, no referrer leaking ids to
// other sites ("same-origin": with "no-referrer" browsers send Origin:
// null on the console's own POSTs, which the origin check must refuse).
func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	if err := checkRequest(r); err != nil {
		// Before any route, so no form value reaches a service or the
		// store unchecked; the route's own rules (lengths, names) come
		// after, in the services the API shares.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "Refused: "+err.Error()+"\n")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// maxForm bounds a console form; no form of the console comes near it.
const maxForm = 64 << 10

// checkRequest holds the path, the query and every form value to the
// input rules: valid UTF-8 without control characters (newline and tab
// allowed in form values, which come from textareas too).
func checkRequest(r *http.Request) error {
	if err := input.Text("path", r.URL.Path, 2048); err != nil {
		return err
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	}
	parse := r.ParseForm
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		// File uploads (apns.go): parsed here, so the CSRF field and every
		// text field are checked like any other form's.
		parse = func() error { return r.ParseMultipartForm(maxForm) }
	}
	if err := parse(); err != nil {
		return input.Errorf("form", "unreadable or larger than %d bytes", maxForm)
	}
	for k, vs := range r.Form {
		if err := input.Text("form field", k, 256); err != nil {
			return err
		}
		for _, v := range vs {
			if err := input.FreeText(k, v, maxForm); err != nil {
				return err
			}
		}
	}
	return nil
}

// allowed says whether role may use the route pattern.
func (c *Console) allowed(role, pattern string) bool {
	for _, rt := range c.routes {
		if rt.Pattern == pattern {
			return rt.Roles == nil || slices.Contains(rt.Roles, role)
		}
	}
	return false
}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "—"
				}
				return timefmt.Human(v)
			case *time.Time:
				if v == nil {
					return "—"
				}
				return timefmt.Human(*v)
			}
			return ""
		},
		"join": strings.Join,
	}
	names, _ := fs.Glob(templateFS, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return pages
}
