// Package fips says whether Cordon runs on Go's FIPS 140-3 Cryptographic
// Module and defines the TLS parameters each mode allows, so that the
// server, the agent and cordonctl negotiate alike.
//
// A "FIPS build" is one linked against a frozen module with
// GOFIPS140=v1.0.0 (make build-fips). Such a build turns the module on by
// default; GODEBUG=fips140=only additionally makes every non-approved
// algorithm fail at run time.
package fips

import (
	"crypto/fips140"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime/debug"
)

// certified lists the module versions that hold a FIPS 140-3 certificate,
// as the Go toolchain's lib/fips140/certified.txt names them. A frozen
// module that is only "in process" runs, but is reported as such.
var certified = map[string]bool{"v1.0.0": true}

// Status describes the cryptographic module this process runs on.
type Status struct {
	Enabled   bool   // crypto/fips140.Enabled: the module runs its self-tests and approved-only defaults
	Enforced  bool   // GODEBUG=fips140=only: non-approved algorithms fail
	Module    string // crypto/fips140.Version: "v1.0.0", or "latest" when not built against a frozen module
	Build     string // the GOFIPS140 build setting, e.g. "v1.0.0-c2097c7c"; empty when built without one
	Certified bool   // Module holds a FIPS 140-3 certificate
}

// Current reads the running process's status.
func Current() Status {
	s := Status{Enabled: fips140.Enabled(), Enforced: fips140.Enforced(), Module: fips140.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "GOFIPS140" {
				s.Build = kv.Value
			}
		}
	}
	s.Certified = s.Frozen() && certified[s.Module]
	return s
}

// Frozen reports whether the binary was built against a frozen module
// (GOFIPS140=vX.Y.Z). That makes it a FIPS build, and FIPS mode its
// default.
func (s Status) Frozen() bool { return s.Module != "" && s.Module != "latest" }

// Default is the mode a process starts in unless told otherwise: on in
// FIPS builds, off elsewhere.
func Default() bool { return Current().Frozen() }

// ErrInactive is returned by Check when FIPS mode is asked of a process
// that does not run a frozen, enabled module.
var ErrInactive = errors.New("FIPS 140-3 mode requested but the Go Cryptographic Module is not active")

// Check returns nil when FIPS mode may run, or an error that tells the
// operator what to change.
func (s Status) Check() error {
	switch {
	case !s.Frozen():
		return fmt.Errorf("%w: this binary was built without GOFIPS140 (build it with `make build-fips`, or run without --fips)", ErrInactive)
	case !s.Enabled:
		return fmt.Errorf("%w: module %s is linked but switched off (GODEBUG=fips140=off?)", ErrInactive, s.Module)
	}
	return nil
}

// Lines describes the status for `version` output, one fact per line, in
// a form an auditor can compare against the module's certificate.
func (s Status) Lines() []string {
	state := "disabled"
	if s.Enabled {
		state = "enabled"
	}
	lines := []string{"fips140: " + state}
	module := s.Module + " (not a frozen module: built without GOFIPS140)"
	if s.Frozen() {
		cert := "certified"
		if !s.Certified {
			cert = "not on the certified list"
		}
		module = fmt.Sprintf("%s (GOFIPS140=%s, %s)", s.Module, s.Build, cert)
	}
	lines = append(lines, "fips140 module: "+module)
	if s.Enforced {
		lines = append(lines, "fips140 enforcement: only (non-approved algorithms fail)")
	}
	return lines
}

// approvedSuites are the TLS 1.2 suites FIPS mode allows: ECDHE key
// agreement with AES-GCM. The RSA variants let a client pass a TLS proxy
// that presents an RSA certificate; Cordon's own certificates are ECDSA.
var approvedSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}

// TLS returns the base configuration for every Cordon TLS endpoint, server
// or client. Callers add certificates and verification.
//
// FIPS mode: TLS 1.2 and 1.3 only, AES-GCM suites, ECDHE over P-256 and
// P-384 (no X25519, no ChaCha20). TLS 1.3 suites are not configurable in
// Go; with the module enabled crypto/tls offers only the AES-GCM ones,
// which is why FIPS mode requires Check to pass.
//
// Otherwise: TLS 1.2+ with forward-secret AEAD suites, AES-GCM first, and
// ChaCha20 kept for CPUs without AES instructions (phones, older ARM).
func TLS(fipsMode bool) *tls.Config {
	if fipsMode {
		return &tls.Config{
			MinVersion:       tls.VersionTLS12,
			MaxVersion:       tls.VersionTLS13,
			CipherSuites:     append([]uint16(nil), approvedSuites...),
			CurvePreferences: []tls.CurveID{tls.CurveP256, tls.CurveP384},
		}
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: append(append([]uint16(nil), approvedSuites...),
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256),
	}
}
