package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// now is a time as callers hand the store one: UTC, to the microsecond
// (PostgreSQL's precision).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails t unless err is (wraps) target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// sameTime fails t unless got is want, to the microsecond, in UTC.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	if _, off := got.Zone(); off != 0 {
		t.Fatalf("%s: %v is not in UTC", what, got)
	}
}

// samePtrTime is sameTime for an optional time that must be set.
func samePtrTime(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: unset, want %v", what, want)
	}
	sameTime(t, what, *got, want)
}

// enroll adds d, with one certificate (serial "cert-<id>"), the way
// devices come to exist: through a one-time token and Enroll.
func enroll(t *testing.T, st *store.Store, d store.Device) *store.Device {
	t.Helper()
	if d.Status == "" {
		d.Status = store.StatusActive
	}
	if d.EnrolledAt.IsZero() {
		d.EnrolledAt = now()
	}
	tok := &store.EnrollmentToken{ID: "tok-" + d.ID, Hash: []byte("secret-" + d.ID), ExpiresAt: now().Add(time.Hour),
		Uses: 1, UsesLeft: 1, CreatedAt: now()}
	must(t, st.CreateToken(t.Context(), tok))
	must(t, st.Enroll(t.Context(), tok.ID, tok.Hash, func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
		return &d, cert(d.ID, "cert-"+d.ID), nil
	}))
	return &d
}

func cert(deviceID, serial string) *store.Certificate {
	n := now()
	return &store.Certificate{Serial: serial, DeviceID: deviceID, NotBefore: n, NotAfter: n.Add(24 * time.Hour), IssuedAt: n}
}

// device reads a device that must exist.
func device(t *testing.T, st *store.Store, id string) *store.Device {
	t.Helper()
	d, err := st.GetDevice(t.Context(), id)
	if err != nil {
		t.Fatalf("GetDevice(%s): %v", id, err)
	}
	return d
}

// ids lists what key returns for each element, for comparing orders.
func ids[T any](xs []T, key func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = key(x)
	}
	return out
}

// sameIDs fails t unless got lists exactly want, in order.
func sameIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}
