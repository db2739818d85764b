package httpmetrics

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cordon-mdm/cordon/internal/metricstest"
)

// Requests are timed under the pattern that matched inside the wrapped
// handler (not the outer mux's, never the raw path), with their status
// class; what matched nothing is "unmatched".
func TestRequestsAreTimedByPattern(t *testing.T) {
	m := New()
	inner := http.NewServeMux()
	inner.HandleFunc("GET /api/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "broken" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok")) // no WriteHeader: 200
	})
	root := http.NewServeMux()
	root.Handle("/", m.Wrap("api", inner))
	for _, path := range []string{"/api/things/1", "/api/things/2", "/api/things/broken", "/elsewhere"} {
		root.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	for _, c := range []struct {
		route, class string
		want         uint64
	}{
		{"GET /api/things/{id}", "2xx", 2},
		{"GET /api/things/{id}", "5xx", 1},
		{Unmatched, "4xx", 1},
		{"/", "4xx", 0}, // the outer mux's pattern is not the route
	} {
		if n := metricstest.HistogramCount(t, m.duration, "handler", "api", "route", c.route, "status_class", c.class); n != c.want {
			t.Errorf("%s %s: %d requests, want %d", c.route, c.class, n, c.want)
		}
	}
	if n := metricstest.HistogramCount(t, m.duration); n != 4 {
		t.Fatalf("%d requests timed, want 4", n)
	}
}
