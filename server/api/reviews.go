package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// Reviews produces and records the audit reviews (AU-6).
type Reviews interface {
	Status(ctx context.Context, limit int) (*review.Status, error)
	Record(ctx context.Context, id, note, actor, source string) (*store.AuditReview, error)
}

// WithReviews serves GET and POST /api/v1/audit/reviews.
func WithReviews(r Reviews) Option { return func(a *API) { a.reviews = r } }

func (a *API) listReviews(w http.ResponseWriter, r *http.Request) {
	st, err := a.reviews.Status(r.Context(), 100)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(st.Reviews))
	for _, v := range st.Reviews {
		out = append(out, reviewJSON(&v.Review, &v.Summary, v.Overdue))
	}
	next := any(nil)
	if !st.NextAt.IsZero() {
		next = timefmt.JSON(st.NextAt)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"interval": st.Interval.String(), "overdue": st.Overdue,
		"pending": st.Pending, "next_at": next, "reviews": out})
}

func (a *API) recordReview(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID   string `json:"id"`
		Note string `json:"note"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	rv, err := a.reviews.Record(r.Context(), body.ID, body.Note, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, reviewJSON(rv, nil, false))
}

func reviewJSON(rv *store.AuditReview, sum *review.Summary, overdue bool) map[string]any {
	m := map[string]any{"id": rv.ID, "period_start": timefmt.JSON(rv.PeriodStart), "period_end": timefmt.JSON(rv.PeriodEnd),
		"created_at": timefmt.JSON(rv.CreatedAt), "reviewed_at": nil, "reviewed_by": rv.ReviewedBy, "note": rv.Note, "overdue": overdue}
	if rv.ReviewedAt != nil {
		m["reviewed_at"] = timefmt.JSON(*rv.ReviewedAt)
	}
	if sum != nil {
		m["entries"], m["sections"], m["anomalies"] = sum.Entries, sum.Sections, sum.Anomalies
	}
	return m
}
