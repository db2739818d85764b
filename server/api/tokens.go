package api

import (
	"context"
	"net/http"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
)

// Tokens issues enrollment tokens.
type Tokens interface {
	CreateToken(ctx context.Context, req enroll.TokenRequest, actor, source string) (string, time.Time, error)
}

// tokenBody is POST /api/v1/enrollment-tokens. Absent fields take the
// defaults; a present zero is refused by the service with the range.
type tokenBody struct {
	TTL   *string `json:"ttl"`
	Uses  *int    `json:"uses"`
	Owner string  `json:"owner"`
}

func (b *tokenBody) request() (enroll.TokenRequest, error) {
	req := enroll.TokenRequest{TTL: enroll.DefaultTTL, Uses: enroll.DefaultUses, Owner: b.Owner}
	if b.TTL != nil {
		d, err := time.ParseDuration(*b.TTL)
		if err != nil {
			return req, input.Errorf("ttl", "not a duration such as 24h: %q", *b.TTL)
		}
		req.TTL = d
	}
	if b.Uses != nil {
		req.Uses = *b.Uses
	}
	return req, nil
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var body tokenBody
	if !a.decode(w, r, &body) {
		return
	}
	req, err := body.request()
	if err != nil {
		a.fail(w, err)
		return
	}
	text, exp, err := a.tokens.CreateToken(r.Context(), req, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, map[string]any{"token": text, "expires_at": timefmt.JSON(exp)})
}
