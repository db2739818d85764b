package pprofserve

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestCheckRefusesAllButLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "192.168.1.2:6060", "localhost:6060", "[::]:6060"} {
		if err := Check(addr); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Check(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
	if err := Check("127.0.0.1"); err == nil || errors.Is(err, ErrNotLoopback) {
		t.Errorf("Check without a port = %v, want a parse error", err)
	}
	for _, addr := range []string{"127.0.0.1:6060", "127.0.0.9:0", "[::1]:6060"} {
		if err := Check(addr); err != nil {
			t.Errorf("Check(%q) = %v", addr, err)
		}
	}
}

func TestServeAnswersProfilesUntilCancelled(t *testing.T) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("goroutine profile: %d %.200s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v", err)
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/debug/pprof/"); err == nil {
		t.Fatal("still answering after the context ended")
	}
}
