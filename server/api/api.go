// Package api is the REST API on the console listener: thin handlers that
// authenticate, authorise by role, call a service or the store, and map
// errors to statuses. No business rule lives here.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/status"
	"github.com/cordon-mdm/cordon/server/store"
)

// Store is what the API reads.
type Store interface {
	auth.KeyStore
	Ping(ctx context.Context) error
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	PostureHistory(ctx context.Context, deviceID string, limit int) ([]store.PostureReport, error)
	ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// Auditor records and verifies the audit trail.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
	Verify(ctx context.Context) (audit.VerifyResult, error)
}

// Tokens issues enrollment tokens.
type Tokens interface {
	CreateToken(ctx context.Context, req enroll.TokenRequest, actor, source string) (string, time.Time, error)
}

// Devices performs device lifecycle actions.
type Devices interface {
	Revoke(ctx context.Context, deviceID, reason, actor, source string) error
}

// CA publishes the CA material.
type CA interface {
	CRL() ([]byte, error)
	RootPEM() string
}

// API is the REST handler.
type API struct {
	store   Store
	audit   Auditor
	tokens  Tokens
	devices Devices
	ca      CA
	enroll  http.Handler
	metrics http.Handler
	log     *slog.Logger
	mux     *http.ServeMux

	commands      Commands
	commandReader CommandReader

	incidents      Incidents
	incidentReader IncidentReader

	compliance       Compliance
	complianceReader ComplianceReader

	accounts   Accounts
	userReader UserReader
	reviews    Reviews

	routes []string
	keys   Limiter
	reads  *readChains

	checkpoints Checkpoints
}

// Checkpoints are the audit chain's signed checkpoints (AU-9).
type Checkpoints interface {
	Checkpoints(ctx context.Context) ([]auditchain.Checkpoint, error)
	PublicKeyPEM() string
}

// WithCheckpoints serves the signed checkpoints at
// GET /api/v1/audit/checkpoints.
func WithCheckpoints(c Checkpoints) Option { return func(a *API) { a.checkpoints = c } }

// Limiter slows down API key guessing per source address (see
// server/ratelimit).
type Limiter interface {
	Allow(source string) (ok bool, retryAfter time.Duration)
	Fail(source string)
}

type noLimit struct{}

func (noLimit) Allow(string) (bool, time.Duration) { return true, 0 }
func (noLimit) Fail(string)                        {}

// WithKeyLimiter limits failed API key checks per source address.
func WithKeyLimiter(l Limiter) Option { return func(a *API) { a.keys = l } }

// Option configures the API.
type Option func(*API)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(a *API) { a.log = l } }

// WithMetrics serves h at /metrics (authenticated).
func WithMetrics(h http.Handler) Option { return func(a *API) { a.metrics = h } }

// New builds the handler. enrollHandler serves POST /enroll.
func New(st Store, auditor Auditor, tokens Tokens, devices Devices, ca CA, enrollHandler http.Handler, opts ...Option) *API {
	a := &API{store: st, audit: auditor, tokens: tokens, devices: devices, ca: ca, enroll: enrollHandler,
		log: slog.New(slog.DiscardHandler), mux: http.NewServeMux(), keys: noLimit{}, reads: newReadChains()}
	for _, o := range opts {
		o(a)
	}
	staff := []string{auth.RoleITAdmin, auth.RoleLASO, auth.RoleAuditor}
	trail := []string{auth.RoleAuditor, auth.RoleLASO}
	m := routeRecorder{a}
	m.HandleFunc("GET /healthz", a.healthz)
	m.Handle("POST /enroll", a.enroll)
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
	m.Handle("GET /api/v1/audit", a.require(a.listAudit, trail...))
	m.Handle("GET /api/v1/audit/verify", a.require(a.verifyAudit, trail...))
	m.Handle("GET /api/v1/audit/checkpoints", a.require(a.auditCheckpoints, trail...))
	if a.reviews != nil {
		// AU-6: the LASO records the review; the auditor reads it too.
		m.Handle("GET /api/v1/audit/reviews", a.require(a.listReviews, trail...))
		m.Handle("POST /api/v1/audit/reviews", a.require(a.recordReview, auth.RoleLASO))
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
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := checkURL(r); err != nil {
		a.fail(w, err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

type principalKey struct{}

func principal(r *http.Request) *auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	return p
}

// require authenticates the bearer key and admits only the given roles;
// every refusal is audited. A source that has failed too often is
// answered 429 before its key is looked at (the limiter's owner audits
// those refusals once per window).
func (a *API) require(h http.HandlerFunc, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		source := httpjson.RemoteHost(r)
		if ok, retry := a.keys.Allow(source); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			httpjson.Error(w, http.StatusTooManyRequests, "too many failed API key attempts from this address; retry later")
			return
		}
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := auth.Authenticate(r.Context(), a.store, bearer)
		if !ok || err != nil {
			if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
				a.log.Error("authenticate", "err", err)
				httpjson.Error(w, http.StatusInternalServerError, "internal error")
				return
			}
			if bearer != "" {
				a.keys.Fail(source) // a wrong key is a guess; no key is not
			}
			a.audit.Record(r.Context(), audit.Entry{Actor: "anonymous", Source: httpjson.RemoteHost(r), Action: audit.APIDenied,
				Target: r.Method + " " + r.URL.Path, Outcome: audit.Denied, Details: map[string]string{"reason": "missing or invalid API key"}})
			w.Header().Set("WWW-Authenticate", `Bearer realm="cordon"`)
			httpjson.Error(w, http.StatusUnauthorized, auth.ErrUnauthenticated.Error())
			return
		}
		allowed := false
		for _, role := range roles {
			allowed = allowed || p.Role == role
		}
		if !allowed {
			a.audit.Record(r.Context(), audit.Entry{Actor: p.Actor, Source: httpjson.RemoteHost(r), Action: audit.APIDenied,
				Target: r.Method + " " + r.URL.Path, Outcome: audit.Denied,
				Details: map[string]string{"reason": "role " + p.Role + " may not do this"}})
			httpjson.Error(w, http.StatusForbidden, "role "+p.Role+" may not do this")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "database unavailable")
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) rootPEM(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write([]byte(a.ca.RootPEM()))
}

func (a *API) crl(w http.ResponseWriter, _ *http.Request) {
	der, err := a.ca.CRL()
	if err != nil {
		a.log.Error("crl", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "CRL unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(der)
}

// tokenBody is POST /api/v1/enrollment-tokens. Absent fields take the
// defaults; a present zero is refused by the service with the range.
type tokenBody struct {
	TTL   *string `json:"ttl"`
	Uses  *int    `json:"uses"`
	Owner string  `json:"owner"`
}

func (b *tokenBody) request() (enroll.TokenRequest, error) {
	req := enroll.TokenRequest{TTL: enroll.DefaultTTL, Uses: enroll.DefaultUses, Owner: b.Owner}
	if b.TTL != nil {
		d, err := time.ParseDuration(*b.TTL)
		if err != nil {
			return req, input.Errorf("ttl", "not a duration such as 24h: %q", *b.TTL)
		}
		req.TTL = d
	}
	if b.Uses != nil {
		req.Uses = *b.Uses
	}
	return req, nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if !a.decode(w, r, &body) {
		return
	}
	req, err := body.request()
	if err != nil {
		a.fail(w, err)
		return
	}
	text, exp, err := a.tokens.CreateToken(r.Context(), req, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, map[string]any{"token": text, "expires_at": timefmt.JSON(exp)})
}

func (a *API) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := a.store.ListDevices(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	// One read of the findings for the whole list, not one per device.
	var states map[string]compliance.State
	if a.compliance != nil {
		if states, err = a.compliance.States(r.Context(), ds); err != nil {
			a.fail(w, err)
			return
		}
	}
	out := make([]Device, 0, len(ds))
	for i := range ds {
		d := deviceJSON(&ds[i])
		if st, ok := states[d.ID]; ok {
			setCompliance(&d, st)
		}
		out = append(out, d)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"devices": out})
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request) {
	d, err := a.store.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := deviceJSON(d)
	if err := a.withCompliance(r.Context(), &out); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) lockTimeline(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.store.GetDevice(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	es, err := a.store.LockTimeline(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		out = append(out, clockJSON(map[string]any{"at": timefmt.JSON(e.At), "state": e.State, "source": e.Source},
			e.ClockSkew, e.SkewSeconds))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"entries": out})
}

// postureHistory is the device's stored reports, newest received first
// (the store keeps a bounded number), each with its clock flags.
func (a *API) postureHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.store.GetDevice(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	limit := 100
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 500 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be a whole number from 1 to 500")
			return
		}
		limit = n
	}
	rs, err := a.store.PostureHistory(r.Context(), id, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(rs))
	for _, rep := range rs {
		out = append(out, postureHistoryJSON(rep))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"reports": out})
}

func (a *API) revokeDevice(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !a.decode(w, r, &body) {
		return
	}
	if err := input.FreeText("reason", body.Reason, MaxReason); err != nil {
		a.fail(w, err)
		return
	}
	if body.Reason == "" {
		body.Reason = "revoked by " + principal(r).Actor
	}
	if err := a.devices.Revoke(r.Context(), r.PathValue("id"), body.Reason, principal(r).Actor, httpjson.RemoteHost(r)); err != nil {
		a.fail(w, err)
		return
	}
	d, err := a.store.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := deviceJSON(d)
	if err := a.withCompliance(r.Context(), &out); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, out)
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	q := store.AuditQuery{Action: r.URL.Query().Get("action"), Target: r.URL.Query().Get("target")}
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			httpjson.Error(w, http.StatusBadRequest, "after must be a non-negative integer")
			return
		}
		q.AfterSeq = n
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			httpjson.Error(w, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		q.Limit = n
	}
	es, err := a.store.ListAudit(r.Context(), q)
	if err != nil {
		a.fail(w, err)
		return
	}
	limit := q.Limit
	if limit == 0 {
		limit = 1000 // the store's default
	}
	// AU-2: the read is recorded, with its filter, before anything of it
	// is sent; a read that cannot be recorded is not answered.
	key := chainKey(principal(r).Actor, q.Action, q.Target, limit)
	if !a.reads.continues(key, q.AfterSeq) {
		if err := a.audit.Record(r.Context(), audit.Entry{Actor: principal(r).Actor, Source: httpjson.RemoteHost(r),
			Action: audit.TrailRead, Target: "audit", Outcome: audit.Success, Details: map[string]string{
				"action": q.Action, "target": q.Target, "after": strconv.FormatInt(q.AfterSeq, 10),
				"limit": strconv.Itoa(limit), "entries": strconv.Itoa(len(es)), "via": "api"}}); err != nil {
			a.log.Error("audit read", "err", err)
			httpjson.Error(w, http.StatusServiceUnavailable, "the audit trail cannot record this read; try again later")
			return
		}
	}
	if len(es) > 0 {
		a.reads.ended(key, es[len(es)-1].Seq)
	}
	out := make([]map[string]any, 0, len(es))
	for _, e := range es {
		var details map[string]string
		if e.Details != "" {
			json.Unmarshal([]byte(e.Details), &details)
		}
		out = append(out, map[string]any{"seq": e.Seq, "time": timefmt.JSON(e.Time), "actor": e.Actor,
			"source": e.Source, "action": e.Action, "target": e.Target, "outcome": e.Outcome, "details": details,
			"prev_hash": e.PrevHash, "hash": e.Hash})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"entries": out})
}

func (a *API) verifyAudit(w http.ResponseWriter, r *http.Request) {
	res, err := a.audit.Verify(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	details := map[string]string{"ok": strconv.FormatBool(res.OK), "entries": strconv.FormatInt(res.Entries, 10), "via": "api"}
	if res.Broken != nil {
		details["broken_seq"] = strconv.FormatInt(*res.Broken, 10)
	}
	if err := a.audit.Record(r.Context(), audit.Entry{Actor: principal(r).Actor, Source: httpjson.RemoteHost(r),
		Action: audit.TrailVerified, Target: "audit", Outcome: audit.Success, Details: details}); err != nil {
		a.log.Error("audit verify", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "the audit trail cannot record this read; try again later")
		return
	}
	httpjson.Write(w, http.StatusOK, res)
}

// auditCheckpoints answers the signed checkpoints and the key that
// verifies them. An auditor takes the key from the server host (cordon-server
// audit key) or compares its fingerprint: a key taken from the same
// server it vouches for proves less.
func (a *API) auditCheckpoints(w http.ResponseWriter, r *http.Request) {
	if a.checkpoints == nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "audit checkpoints are not configured")
		return
	}
	cps, err := a.checkpoints.Checkpoints(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	pem := a.checkpoints.PublicKeyPEM()
	pub, err := auditchain.ParsePublicKeyPEM([]byte(pem))
	if err != nil {
		a.fail(w, err)
		return
	}
	if cps == nil {
		cps = []auditchain.Checkpoint{}
	}
	// AU-2: the checkpoints are part of the trail; reading them is
	// recorded like a read of the entries, or not answered.
	if err := a.audit.Record(r.Context(), audit.Entry{Actor: principal(r).Actor, Source: httpjson.RemoteHost(r),
		Action: audit.TrailRead, Target: "audit", Outcome: audit.Success, Details: map[string]string{
			"what": "checkpoints", "checkpoints": strconv.Itoa(len(cps)), "via": "api"}}); err != nil {
		a.log.Error("audit read", "err", err)
		httpjson.Error(w, http.StatusServiceUnavailable, "the audit trail cannot record this read; try again later")
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"public_key": pem, "key_fingerprint": auditchain.Fingerprint(pub),
		"algorithm": "Ed25519", "checkpoints": cps})
}

// fail answers err with the status server/status gives it (the mapping
// the console shares); a 500 is logged and not shown.
func (a *API) fail(w http.ResponseWriter, err error) {
	var pe *profiles.Error
	switch code := status.Of(err); {
	case code == http.StatusNotFound:
		httpjson.Error(w, code, "not found")
	case errors.As(err, &pe):
		httpjson.Write(w, code, map[string]any{"error": err.Error(), "field": pe.Field, "line": pe.Line})
	case code < http.StatusInternalServerError:
		httpjson.Error(w, code, err.Error())
	case code == http.StatusServiceUnavailable:
		// The database's words stay in the log; the caller learns only
		// that the trail refused the change.
		a.log.Error("api", "err", err)
		httpjson.Error(w, code, audit.ErrUnavailable.Error())
	default:
		a.log.Error("api", "err", err)
		httpjson.Error(w, http.StatusInternalServerError, "internal error")
	}
}

// MaxReason is the longest free-text reason or note a route takes.
const MaxReason = 1024

// decode reads the one JSON document of a body through input.DecodeJSON
// (trailing data, unknown fields and bad text refused; then v's Check),
// answering 400 itself when it fails.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := input.DecodeJSON(http.MaxBytesReader(w, r.Body, input.MaxBody), v, input.MaxBody); err != nil {
		a.fail(w, err)
		return false
	}
	return true
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
