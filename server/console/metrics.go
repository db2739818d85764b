package console

import (
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpmetrics"
)

// WithRequestMetrics times every console request by route pattern and
// status class, under handler "console".
func WithRequestMetrics(m *httpmetrics.Metrics) Option {
	return func(c *Console) { c.timed = m.Wrap("console", http.HandlerFunc(c.serve)) }
}

// ServeHTTP serves the console (serve), timed when WithRequestMetrics.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.timed != nil {
		c.timed.ServeHTTP(w, r)
		return
	}
	c.serve(w, r)
}
