// Package api is the REST API on the console listener: thin handlers that
// authenticate, authorise by role, call a service or the store, and map
// errors to statuses. No business rule lives here.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

	"github.com/cordon-mdm/cordon/internal/httpmetrics"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
)

// Store is what the API reads itself, one small interface per concern:
// the API keys it authenticates, the database it reports on, the devices
// and the audit trail.
type Store interface {
	auth.KeyStore
	Pinger
	DeviceReader
	AuditReader
}

// Auditor records and verifies the audit trail.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
	Verify(ctx context.Context) (audit.VerifyResult, error)
}

// API is the REST handler.
type API struct {
	store        Store
	audit        Auditor
	tokens       Tokens
	devices      Devices
	ca           CA
	enroller     Enroller
	tokenGuesses Limiter
	metrics      http.Handler
	log          *slog.Logger
	mux          *http.ServeMux

	commands      Commands
	commandReader CommandReader

	incidents      Incidents
	incidentReader IncidentReader

	compliance       Compliance
	complianceReader ComplianceReader

	accounts   Accounts
	userReader UserReader
	reviews    Reviews
	rollouts   Rollouts

	routes []string
	keys   Limiter
	reads  *readChains

	checkpoints Checkpoints
	apple       AppleProfiles
	// appleRefresh serves POST /api/v1/devices/{id}/refresh.
	appleRefresh AppleRefresher
	// agentPackages serves POST /api/v1/agent-packages.
	agentPackages AgentPackages
	// timed is serve timed by route (WithRequestMetrics), nil without.
	timed http.Handler
}

// Option configures the API.
type Option func(*API)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// WithRequestMetrics times every request by route pattern and status
// class, under handler "api" (/metrics included).
func WithRequestMetrics(m *httpmetrics.Metrics) Option {
	return func(a *API) { a.timed = m.Wrap("api", http.HandlerFunc(a.serve)) }
}

// WithMetrics serves h at /metrics (authenticated).
func WithMetrics(h http.Handler) Option { return func(a *API) { a.metrics = h } }

// New builds the handler. enroller redeems the tokens of POST /enroll.
func New(st Store, auditor Auditor, tokens Tokens, devices Devices, ca CA, enroller Enroller, opts ...Option) *API {
	a := &API{store: st, audit: auditor, tokens: tokens, devices: devices, ca: ca, enroller: enroller,
		log: slog.New(slog.DiscardHandler), mux: http.NewServeMux(), keys: noLimit{}, tokenGuesses: noLimit{}, reads: newReadChains()}
	for _, o := range opts {
		o(a)
	}
	staff := []string{auth.RoleITAdmin, auth.RoleLASO, auth.RoleAuditor}
	trail := []string{auth.RoleAuditor, auth.RoleLASO}
	m := routeRecorder{a}
	m.HandleFunc("GET /healthz", a.healthz)
	m.HandleFunc("POST /enroll", a.enrollDevice)
	m.HandleFunc("POST /enroll/challenge", a.enrollChallenge) // protocol.EnrollChallengePath
	m.HandleFunc("GET /ca.pem", a.rootPEM)
	m.HandleFunc("GET /crl", a.crl)
	m.HandleFunc("GET /api/v1/openapi.json", a.openapi)
	m.Handle("POST /api/v1/enrollment-tokens", a.require(a.createToken, auth.RoleITAdmin))
	m.Handle("GET /api/v1/devices", a.require(a.listDevices, staff...))
	m.Handle("GET /api/v1/devices/{id}", a.require(a.getDevice, staff...))
	m.Handle("GET /api/v1/devices/{id}/lock-timeline", a.require(a.lockTimeline, staff...))
	m.Handle("GET /api/v1/devices/{id}/posture-history", a.require(a.postureHistory, staff...))
	m.Handle("POST /api/v1/devices/{id}/revoke", a.require(a.revokeDevice, auth.RoleITAdmin, auth.RoleLASO))
	if a.commands != nil {
		// Wipe is narrowed to the LASO inside the queue, which audits the
		// refusal with the command's details.
		m.Handle("POST /api/v1/devices/{id}/commands", a.require(a.issueCommand, auth.RoleITAdmin, auth.RoleLASO))
		m.Handle("GET /api/v1/commands/{id}", a.require(a.getCommand, staff...))
		m.Handle("POST /api/v1/commands/{id}/approve", a.require(a.approveCommand, auth.RoleLASO))
	}
	if a.incidents != nil {
		// Anyone with a device may report; the LASO runs the response.
		m.Handle("POST /api/v1/incidents", a.require(a.openIncident, auth.RoleITAdmin, auth.RoleLASO, auth.RoleUser))
		m.Handle("GET /api/v1/incidents", a.require(a.listIncidents, staff...))
		m.Handle("GET /api/v1/incidents/{id}", a.require(a.getIncident, staff...))
		m.Handle("PATCH /api/v1/incidents/{id}", a.require(a.updateIncident, auth.RoleLASO))
		m.Handle("GET /api/v1/incidents/{id}/form", a.require(a.incidentForm, staff...))
		m.Handle("PATCH /api/v1/incidents/{id}/form", a.require(a.updateIncidentForm, auth.RoleLASO))
		m.Handle("POST /api/v1/incidents/{id}/lost-mode", a.require(a.lostMode, auth.RoleLASO))
	}
	if a.compliance != nil {
		it := auth.RoleITAdmin
		m.Handle("GET /api/v1/devices/{id}/access", a.require(a.deviceAccess, staff...))
		m.Handle("PUT /api/v1/devices/{id}/group", a.require(a.putDeviceGroup, it))
		m.Handle("GET /api/v1/compliance", a.require(a.complianceSummary, staff...))
		m.Handle("GET /api/v1/profiles", a.require(a.listProfiles, staff...))
		m.Handle("GET /api/v1/profiles/schema", a.require(a.profileSchema, staff...))
		m.Handle("GET /api/v1/profiles/{name}/mobileconfig", a.require(a.mobileConfig, staff...))
		m.Handle("GET /api/v1/devices/{id}/findings", a.require(a.findingHistory, staff...))
		m.Handle("GET /api/v1/profiles/{name}", a.require(a.getProfile, staff...))
		m.Handle("PUT /api/v1/profiles/{name}", a.require(a.putProfile, it))
		m.Handle("GET /api/v1/groups", a.require(a.listGroups, staff...))
		m.Handle("PUT /api/v1/groups/{name}", a.require(a.putGroup, it))
		m.Handle("GET /api/v1/bluetooth/allowlist", a.require(a.listAllow, staff...))
		m.Handle("POST /api/v1/bluetooth/allowlist", a.require(a.addAllow, it))
		m.Handle("DELETE /api/v1/bluetooth/allowlist/{address}", a.require(a.deleteAllow, it))
		// Anyone may ask and the named supervisor (any role) endorses; only
		// IT decides.
		m.Handle("POST /api/v1/bluetooth/requests", a.require(a.createRequest, it, auth.RoleLASO, auth.RoleUser))
		m.Handle("GET /api/v1/bluetooth/requests", a.require(a.listRequests, staff...))
		m.Handle("POST /api/v1/bluetooth/requests/{id}/endorse", a.require(a.endorseRequest, it, auth.RoleLASO, auth.RoleAuditor, auth.RoleUser))
		m.Handle("POST /api/v1/bluetooth/requests/{id}/approve", a.require(a.decideRequest(true), it))
		m.Handle("POST /api/v1/bluetooth/requests/{id}/deny", a.require(a.decideRequest(false), it))
	}
	if a.accounts != nil {
		it := auth.RoleITAdmin
		m.Handle("GET /api/v1/users", a.require(a.listUsers, it))
		m.Handle("POST /api/v1/users/{id}/disable", a.require(a.userAction(a.accounts.Disable), it))
		m.Handle("POST /api/v1/users/{id}/enable", a.require(a.userAction(a.accounts.Enable), it))
		m.Handle("PUT /api/v1/users/{id}/role", a.require(a.setUserRole, it))
	}
	if a.apple != nil {
		m.Handle("POST /api/v1/apple/enrollment-profile", a.require(a.appleEnrollmentProfile, auth.RoleITAdmin))
	}
	if a.agentPackages != nil {
		m.Handle("POST /api/v1/agent-packages", a.require(a.createAgentPackage, auth.RoleITAdmin))
	}
	if a.appleRefresh != nil {
		m.Handle("POST /api/v1/devices/{id}/refresh", a.require(a.refreshApple, auth.RoleITAdmin, auth.RoleLASO))
	}
	m.Handle("GET /api/v1/audit", a.require(a.listAudit, trail...))
	m.Handle("GET /api/v1/audit/verify", a.require(a.verifyAudit, trail...))
	m.Handle("GET /api/v1/audit/checkpoints", a.require(a.auditCheckpoints, trail...))
	if a.reviews != nil {
		// AU-6: the LASO records the review; the auditor reads it too.
		m.Handle("GET /api/v1/audit/reviews", a.require(a.listReviews, trail...))
		m.Handle("POST /api/v1/audit/reviews", a.require(a.recordReview, auth.RoleLASO))
	}
	if a.rollouts != nil {
		// Downgrades are narrowed further inside the service: only when
		// asked for explicitly.
		m.Handle("POST /api/v1/agent-rollouts", a.require(a.createRollout, auth.RoleITAdmin, auth.RoleLASO))
		m.Handle("GET /api/v1/agent-rollouts", a.require(a.listRollouts, staff...))
	}
	if a.metrics != nil {
		m.Handle("GET /metrics", a.require(a.metrics.ServeHTTP, staff...))
	}
	return a
}

// routeRecorder registers routes on the mux and remembers their
// patterns, so a test can hold the OpenAPI document to exactly them.
type routeRecorder struct{ a *API }

func (r routeRecorder) Handle(pattern string, h http.Handler) {
	r.a.routes = append(r.a.routes, pattern)
	r.a.mux.Handle(pattern, h)
}

func (r routeRecorder) HandleFunc(pattern string, h http.HandlerFunc) { r.Handle(pattern, h) }

// Routes are the registered patterns ("GET /api/v1/devices").
func (a *API) Routes() []string { return slices.Clone(a.routes) }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.timed != nil {
		a.timed.ServeHTTP(w, r)
		return
	}
	a.serve(w, r)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := checkURL(r); err != nil {
		a.fail(w, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// checkURL holds the path (ids and names in it reach the store and the
// audit trail) and the query to the text rules, before any route runs:
// a NUL there would otherwise become a 500 in PostgreSQL.
func checkURL(r *http.Request) error {
	if err := input.Text("path", r.URL.Path, 2048); err != nil {
		return err
	}
	for k, vs := range r.URL.Query() {
		for _, v := range vs {
			if err := input.Text("query "+k, k+v, 2048); err != nil {
				return input.Errorf("query", "%q: not valid text", k)
			}
		}
	}
	return nil
}
