package api

import (
	"context"
	"net/http"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
)

// Pinger says whether the database answers (GET /healthz).
type Pinger interface {
	Ping(ctx context.Context) error
}

// CA publishes the CA material.
type CA interface {
	CRL() ([]byte, error)
	RootPEM() string
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
