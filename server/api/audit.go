package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// AuditReader reads the trail's entries (GET /api/v1/audit).
type AuditReader interface {
	ListAudit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error)
}

// Checkpoints are the audit chain's signed checkpoints (AU-9).
type Checkpoints interface {
	Checkpoints(ctx context.Context) ([]auditchain.Checkpoint, error)
	PublicKeyPEM() string
}

// WithCheckpoints serves the signed checkpoints at
// GET /api/v1/audit/checkpoints.
func WithCheckpoints(c Checkpoints) Option { return func(a *API) { a.checkpoints = c } }

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
