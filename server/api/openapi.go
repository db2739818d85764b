package api

import (
	"bytes"
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDocument is the document GET /api/v1/openapi.json serves (a
// copy), for tools and tests that hold the server to it.
func OpenAPIDocument() []byte { return bytes.Clone(openapiJSON) }

func (a *API) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
}
