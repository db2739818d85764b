package apiclient

import (
	"context"
	"net/http"
)

// WithAPIKey sends key as the bearer credential on every request. Keys
// come from `cordon-server apikey create`; the key's role decides what
// the server allows (a refused call answers 403 with an Error body).
func WithAPIKey(key string) ClientOption {
	return WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+key)
		return nil
	})
}
