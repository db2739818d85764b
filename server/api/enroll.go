package api

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/protocol"
)

// Enroller is the enrollment exchange behind POST /enroll and its
// attestation challenge, POST /enroll/challenge.
type Enroller interface {
	Enroll(ctx context.Context, body io.Reader, source string) (*protocol.EnrollResponse, error)
	Challenge(ctx context.Context, body io.Reader, source string) (*protocol.ChallengeResponse, error)
}

// WithEnrollLimiter limits failed token redemptions at POST /enroll per
// source address, counted apart from API keys.
func WithEnrollLimiter(l Limiter) Option { return func(a *API) { a.tokenGuesses = l } }

// enrollDevice serves POST /enroll: a device trades a token and a CSR for
// its certificate. Its refusals take their status from status.Of, like
// every other route's.
func (a *API) enrollDevice(w http.ResponseWriter, r *http.Request) {
	a.enrollStep(w, r, func(ctx context.Context, body io.Reader, source string) (any, error) {
		return a.enroller.Enroll(ctx, body, source)
	})
}

// enrollChallenge serves POST /enroll/challenge, the first step of a TPM
// agent's enrollment: its token is checked (and counted as a guess when
// wrong, like POST /enroll's), not consumed.
func (a *API) enrollChallenge(w http.ResponseWriter, r *http.Request) {
	a.enrollStep(w, r, func(ctx context.Context, body io.Reader, source string) (any, error) {
		return a.enroller.Challenge(ctx, body, source)
	})
}

func (a *API) enrollStep(w http.ResponseWriter, r *http.Request, step func(context.Context, io.Reader, string) (any, error)) {
	source := httpjson.RemoteHost(r)
	// Asked before the body is read: a limited source learns nothing of
	// its guess. Its refusals are audited once per window by the limiter's
	// owner, not here one by one.
	if ok, retry := a.tokenGuesses.Allow(source); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
		httpjson.Error(w, http.StatusTooManyRequests, "too many failed enrollment attempts from this address; retry later")
		return
	}
	resp, err := step(r.Context(), http.MaxBytesReader(w, r.Body, enroll.MaxRequestBytes), source)
	if err != nil {
		if enroll.Guess(err) {
			a.tokenGuesses.Fail(source)
		}
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, resp)
}
