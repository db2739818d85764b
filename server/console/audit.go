package console

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type auditView struct {
	Entries []auditRow
	Verify  audit.VerifyResult
	Older   int64
	Action  string
}

type auditRow struct {
	store.AuditEntry
	Details map[string]string
}

// auditPage shows the newest entries (or those before ?before=SEQ) and
// the chain's verification.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	q := store.AuditQuery{Limit: 100, NewestFirst: true, Action: r.URL.Query().Get("action")}
	if n, err := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64); err == nil && n > 0 {
		q.BeforeSeq = n
	}
	av := auditView{Action: q.Action}
	es, err := c.records.ListAudit(ctx, q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, e := range es {
		row := auditRow{AuditEntry: e}
		json.Unmarshal([]byte(e.Details), &row.Details)
		av.Entries = append(av.Entries, row)
	}
	if len(av.Entries) > 0 && av.Entries[len(av.Entries)-1].Seq > 1 {
		av.Older = av.Entries[len(av.Entries)-1].Seq
	}
	if av.Verify, err = c.audit.Verify(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	// AU-2: one entry for the page (its list and its verification), with
	// the filter; a page that cannot be recorded is not shown.
	if err := c.audit.Record(ctx, audit.Entry{Actor: v.actor(), Source: v.source, Action: audit.TrailRead, Target: "audit",
		Outcome: audit.Success, Details: map[string]string{"action": q.Action, "before": strconv.FormatInt(q.BeforeSeq, 10),
			"limit": strconv.Itoa(q.Limit), "entries": strconv.Itoa(len(es)), "verified": strconv.FormatBool(av.Verify.OK), "via": "console"}}); err != nil {
		c.log.Error("audit read", "err", err)
		c.render(w, r, http.StatusServiceUnavailable, "error", v, view{Title: "Unavailable", Error: "The audit trail cannot record this read; try again later."})
		return
	}
	c.render(w, r, http.StatusOK, "audit", v, view{Title: "Audit log", D: av})
}
