package console

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cordon-mdm/cordon/server/review"
	"github.com/cordon-mdm/cordon/server/store"
)

// Reviews produces and records the audit reviews (AU-6).
type Reviews interface {
	Status(ctx context.Context, limit int) (*review.Status, error)
	Record(ctx context.Context, id, note, actor, source string) (*store.AuditReview, error)
}

// WithReviews shows the audit reviews and lets the LASO record them.
func WithReviews(r Reviews) Option { return func(c *Console) { c.reviews = r } }

func (c *Console) reviewsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	if c.reviews == nil {
		c.refused(w, r, v, store.ErrNotFound)
		return
	}
	st, err := c.reviews.Status(r.Context(), 52)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "reviews", v, view{Title: "Audit review", D: st})
}

func (c *Console) recordReview(w http.ResponseWriter, r *http.Request, v *visit) {
	if c.reviews == nil {
		c.refused(w, r, v, store.ErrNotFound)
		return
	}
	if _, err := c.reviews.Record(r.Context(), r.PathValue("id"), r.PostFormValue("note"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/reviews#review-"+url.PathEscape(r.PathValue("id")), "review")
}

// reviewOverdue says whether an audit review is overdue, for the
// overview; false when the console has no reviews.
func (c *Console) reviewOverdue(ctx context.Context) (bool, error) {
	if c.reviews == nil {
		return false, nil
	}
	st, err := c.reviews.Status(ctx, 52)
	if err != nil {
		return false, err
	}
	return st.Overdue, nil
}
