// Package apivalidate holds the server's answers to its OpenAPI document:
// a Validator checks a response's status, headers and (for JSON) body
// against the operation the request matched, and Transport does it for
// every response an http.Client receives. The integration suite's client
// (internal/testenv) goes through it, so a handler that answers a field,
// a status or a content type the document does not describe fails the
// test that caused it.
package apivalidate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator checks responses against one OpenAPI 3 document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// New loads and validates the document (JSON or YAML).
func New(document []byte) (*Validator, error) {
	doc, err := openapi3.NewLoader().LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("apivalidate: load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("apivalidate: the document is not valid OpenAPI: %w", err)
	}
	// The document's server is an example host; a test server listens on
	// any loopback port. Without servers the router matches paths alone.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apivalidate: router: %w", err)
	}
	return &Validator{doc: doc, router: router}, nil
}

// ErrNoOperation: the request's method and path are no operation of the
// document (a console page, /mdm, an unknown path): nothing to hold the
// response to.
var ErrNoOperation = errors.New("apivalidate: no operation in the document")

// Check holds resp to the operation req matched; body is resp's whole
// body (resp.Body is not read). A status the operation does not list, a
// content type it does not list for that status, a header or a JSON body
// that breaks its schema is an error. ErrNoOperation when req matches no
// operation.
func (v *Validator) Check(req *http.Request, resp *http.Response, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return ErrNoOperation
	}
	jsonBody := isJSON(resp.Header.Get("Content-Type"))
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
		// Only JSON bodies have a schema worth checking; a PEM, a
		// package or a profile is checked by its content type.
		ExcludeResponseBody: !jsonBody}
	opts.WithCustomSchemaErrorFunc(schemaError)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return err
	}
	if !jsonBody {
		return v.checkContentType(route, resp, len(body))
	}
	return nil
}

// checkContentType is what ValidateResponse checks only with the body:
// the response's media type is one the operation lists for the status.
func (v *Validator) checkContentType(route *routers.Route, resp *http.Response, n int) error {
	ref := route.Operation.Responses.Status(resp.StatusCode)
	if ref == nil || ref.Value == nil {
		return nil // ValidateResponse already refused an unlisted status
	}
	content := ref.Value.Content
	if len(content) == 0 {
		if n > 0 {
			return fmt.Errorf("status %d: the document describes no body, the server sent %d bytes (%s)", resp.StatusCode, n, resp.Header.Get("Content-Type"))
		}
		return nil
	}
	if content.Get(resp.Header.Get("Content-Type")) == nil {
		return fmt.Errorf("status %d: content type %q is not one the document lists", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return nil
}

// schemaError is one schema failure on a line, where it is and why: the
// library's own message repeats the whole schema and value, which buries
// the field at fault in a test's log.
func schemaError(err *openapi3.SchemaError) string {
	if err.Origin != nil || err.Reason == "" {
		return "" // the library's message
	}
	return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// Transport validates every response of Base (http.DefaultTransport when
// nil) that answers an operation of the document, and tells Report of
// each one that breaks it. The response is handed on unchanged.
type Transport struct {
	Base      http.RoundTripper
	Validator *Validator
	// Report is called once per failing response (a test's Errorf).
	Report func(format string, args ...any)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// The caller would meet the same broken body; its test reports it.
		return resp, nil
	}
	if err := t.Validator.Check(req, resp, body); err != nil && !errors.Is(err, ErrNoOperation) {
		t.Report("OpenAPI: %s %s answered %d, which server/api/openapi.json does not describe: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, err, clip(body))
	}
	return resp, nil
}

func clip(b []byte) string {
	const max = 2048
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
