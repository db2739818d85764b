package posture

import (
	"context"
	"runtime"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	kv := parseOSRelease("# comment\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nBAD\nPRETTY_NAME='x'\n")
	if kv["NAME"] != "Debian GNU/Linux" || kv["VERSION_ID"] != "12" || kv["ID"] != "debian" || kv["PRETTY_NAME"] != "x" {
		t.Fatalf("parsed %v", kv)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("NAME=\"a\\\"b\"\n")
	f.Fuzz(func(t *testing.T, s string) { parseOSRelease(s) })
}

func TestCollectReportsThisSystem(t *testing.T) {
	s := NewSystem("test")
	defer s.Close()
	p, err := s.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.OS.Platform != runtime.GOOS+"/"+runtime.GOARCH || p.OS.AgentVersion != "test" || p.OS.Hostname == "" {
		t.Fatalf("posture %+v", p.OS)
	}
	if p.OS.Name == "" && p.OS.Error == "" {
		t.Fatal("no OS name and no reason")
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
}
