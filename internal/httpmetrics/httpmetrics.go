// Package httpmetrics times the requests of the API and the console by
// route pattern and status class (cordon_http_request_duration_seconds).
// The route is the http.ServeMux pattern that matched, never the raw
// path, so the label set stays bounded whatever clients send.
package httpmetrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Unmatched is the route of a request no pattern matched (a 404, a 405,
// a request refused before routing).
const Unmatched = "unmatched"

// Metrics holds the request histogram that the handlers it wraps share.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// New returns the metrics; register Collectors.
func New() *Metrics {
	return &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_http_request_duration_seconds",
		Help:    "Time to answer API and console requests, by handler, route pattern and status class.",
		Buckets: prometheus.DefBuckets}, []string{"handler", "route", "status_class"})}
}

// Collectors are the request metrics.
func (m *Metrics) Collectors() []prometheus.Collector { return []prometheus.Collector{m.duration} }

// Wrap times next's requests under handler ("api", "console"). next
// must route with an http.ServeMux on the request it is given: the mux
// sets r.Pattern on that request, which is read once next returns.
func (m *Metrics) Wrap(handler string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		r.Pattern = "" // an outer mux's pattern is not this handler's route
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = Unmatched
		}
		m.duration.WithLabelValues(handler, route, statusClass(rec.status)).Observe(time.Since(start).Seconds())
	})
}

// statusClass is "2xx" .. "5xx"; a handler that wrote nothing answered
// 200.
func statusClass(code int) string {
	if code == 0 {
		code = http.StatusOK
	}
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// recorder keeps the status written; Unwrap lets http.ResponseController
// reach the connection's own writer (flush, deadlines).
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
