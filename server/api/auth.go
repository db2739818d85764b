package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
)

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
