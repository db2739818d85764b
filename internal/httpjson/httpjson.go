// Package httpjson writes Cordon's HTTP answers: JSON bodies, and errors
// as {"error": "..."} (INTERFACE.md), plus the caller's address as the
// audit log records it.
package httpjson

import (
	"encoding/json"
	"net"
	"net/http"
)

// Write answers status with v as JSON.
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Error answers status with {"error": msg}.
func Error(w http.ResponseWriter, status int, msg string) {
	Write(w, status, map[string]string{"error": msg})
}

// RemoteHost is the caller's IP address without the port.
func RemoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
