package server

import (
	"testing"
	"time"
)

// The review interval may be shortened under threat (policy F.3), but
// not below an hour.
func TestAuditReviewInterval(t *testing.T) {
	var c config
	if err := WithAuditReviewInterval(30 * time.Minute)(&c); err == nil {
		t.Fatal("30m accepted")
	}
	if err := WithAuditReviewInterval(24 * time.Hour)(&c); err != nil || c.reviewInterval != 24*time.Hour {
		t.Fatal(err, c.reviewInterval)
	}
	c = config{}
	if err := WithAuditReviewInterval(0)(&c); err != nil || c.reviewInterval != 0 {
		t.Fatal("0 must keep the weekly default", err)
	}
}
