package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
)

func TestDecodeRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	frame, err := Encode(TypePosture, "r1", ts, Posture{CollectedAt: ts, OS: OSIdentity{Platform: "linux/amd64", Name: "Debian"}})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if env.Type != TypePosture || env.ID != "r1" || !env.TS.Equal(ts) {
		t.Fatalf("envelope = %+v", env)
	}
	var p Posture
	if err := DecodeBody(env, &p); err != nil {
		t.Fatal(err)
	}
	if p.OS.Name != "Debian" {
		t.Fatalf("posture = %+v", p)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		want  error
	}{
		{"not json", `{"v":1,`, ErrMalformed},
		{"trailing", `{"v":1,"type":"hello","id":"a"} {}`, ErrMalformed},
		{"stray brace", `{"v":1,"type":"hello","id":"a"}}`, ErrMalformed},
		{"invalid UTF-8", "{\"v\":1,\"type\":\"hello\",\"id\":\"a\xff\"}", ErrMalformed},
		{"control in id", `{"v":1,"type":"hello","id":"a\u0000"}`, ErrMalformed},
		{"future version", `{"v":2,"type":"hello","id":"a"}`, ErrVersion},
		{"unknown type", `{"v":1,"type":"shell","id":"a"}`, ErrUnknownType},
		{"no id", `{"v":1,"type":"hello"}`, ErrMalformed},
		{"too large", `{"v":1,"type":"hello","id":"` + strings.Repeat("a", MaxFrameBytes) + `"}`, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.frame))
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode = %v, want %v", err, c.want)
			}
		})
	}
}

func TestDecodeBodyRejectsUnknownFieldsAndInvalid(t *testing.T) {
	env := Envelope{V: 1, Type: TypeHello, ID: "x", Body: json.RawMessage(`{"platform":"linux/amd64","evil":1}`)}
	if err := DecodeBody(env, &Hello{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown field: %v", err)
	}
	env.Body = json.RawMessage(`{"collected_at":"2026-11-23T10:00:00Z","os":{"platform":"linux/amd64"},"lock":{"state":"maybe"}}`)
	if err := DecodeBody(env, &Posture{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad lock state: %v", err)
	}
	for _, body := range []string{
		`{"platform":"linux/amd64","hostname":"a\u0000b"}`,
		`{"platform":"linux/amd64","hostname":"a\nb"}`,
		`{"platform":"linux/amd64"} {"platform":"x"}`,
		`{"platform":"linux/amd64"}}`,
		`{"platform":"linux/amd64","hostname":"a\ud800"}`,
	} {
		env := Envelope{V: 1, Type: TypeHello, ID: "x", Body: json.RawMessage(body)}
		if err := DecodeBody(env, &Hello{}); !errors.Is(err, ErrMalformed) || !errors.Is(err, input.ErrInvalid) {
			t.Errorf("hello %s: %v", body, err)
		}
	}
	lat := 91.0
	for _, r := range []IncidentReport{
		{Kind: "loss_of_control", StartedAt: time.Now(), Latitude: &lat},
		{Kind: "loss_of_control", StartedAt: time.Now(), Description: "lost\x00"},
	} {
		if err := r.Check(); !errors.Is(err, input.ErrInvalid) {
			t.Errorf("report %+v: %v", r, err)
		}
	}
	env.Body = nil
	if err := DecodeBody(env, &Posture{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty body: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder and to every body type:
// nothing may panic, and whatever decodes must re-encode to a frame that
// decodes to the same envelope.
func FuzzDecode(f *testing.F) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, seed := range []any{
		Hello{Platform: "linux/amd64", AgentVersion: "0.1.0"},
		Posture{CollectedAt: now, OS: OSIdentity{Platform: "linux/amd64"}, Lock: &LockState{State: LockLocked}},
		Ack{Ref: "x"}, Renew{CSR: "-----BEGIN"}, ReconnectHint{SpreadMS: 2500},
	} {
		b, _ := Encode(TypeHello, "seed", now, seed)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"type":"posture","id":"a","body":null}`))
	f.Add([]byte(`{"v":99}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := Decode(data)
		if err != nil {
			return
		}
		for _, body := range []any{&Hello{}, &Posture{}, &Ack{}, &Error{}, &Renew{}, &Renewed{}, &ReconnectHint{}, &CommandResult{}, &WipeReceipt{}} {
			_ = DecodeBody(env, body)
		}
		again, err := Encode(env.Type, env.ID, env.TS, env.Body)
		if err != nil {
			return // a body of JSON null or similar may not re-encode
		}
		env2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v\n%s", err, again)
		}
		if env2.Type != env.Type || env2.ID != env.ID {
			t.Fatalf("round trip changed envelope: %+v vs %+v", env, env2)
		}
	})
}

// TestImportsOnlyStandardLibrary keeps protocol a leaf: both binaries link
// it, so anything it imports lands in the agent. The one exception is
// internal/input, itself a leaf (its own test holds it to the standard
// library), so the agent channel and the API share one validation path.
func TestImportsOnlyStandardLibrary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasSuffix(p, "/protocol") && !strings.HasSuffix(p, "/internal/input") {
			t.Errorf("protocol depends on non-standard package %s", p)
		}
	}
}

func TestSignedCommand(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	c := Command{ID: "c1", DeviceID: "d1", Kind: CommandLock, IssuedAt: time.Now().UTC(), NotAfter: time.Now().Add(time.Hour).UTC()}
	s, err := SignCommand(key, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCommand(pub, s)
	if err != nil || got.ID != c.ID || got.Kind != c.Kind || !got.NotAfter.Equal(c.NotAfter) {
		t.Fatalf("open: %+v %v", got, err)
	}
	if _, err := OpenCommand(otherPub, s); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key's public half: %v", err)
	}
	forged, _ := SignCommand(otherKey, c)
	if _, err := OpenCommand(pub, forged); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signed by another key: %v", err)
	}
	tampered := SignedCommand{Payload: bytes.Replace(s.Payload, []byte(`"lock"`), []byte(`"wipe"`), 1), Signature: s.Signature}
	if _, err := OpenCommand(pub, tampered); !errors.Is(err, ErrBadSignature) {
		t.Errorf("kind changed after signing: %v", err)
	}
	bad, _ := SignCommand(key, Command{ID: "c2", DeviceID: "d1", Kind: "format_c", NotAfter: time.Now()})
	if _, err := OpenCommand(pub, bad); !errors.Is(err, ErrBadCommand) {
		t.Errorf("unknown kind: %v", err)
	}
}

func FuzzOpenCommand(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(nil)
	s, _ := SignCommand(key, Command{ID: "c1", DeviceID: "d1", Kind: CommandLock, NotAfter: time.Now()})
	f.Add(s.Payload, s.Signature)
	f.Fuzz(func(t *testing.T, payload, sig []byte) {
		OpenCommand(pub, SignedCommand{Payload: payload, Signature: sig})
	})
}

func TestUnexplainedSkipsSectionsWithoutProvenance(t *testing.T) {
	p := Posture{Identity: &Identity{KeyStorage: "file"}, Disk: &DiskEncryption{State: DiskUnknown}}
	if got := p.Unexplained(); len(got) != 1 || got[0] != "disk.state" {
		t.Fatalf("unexplained %v", got)
	}
}

func TestNotApplicableExplainsAMissingValue(t *testing.T) {
	h := &Hygiene{}
	h.SetNotApplicable("rooted_suspected", "desktop OS")
	f, a := true, true
	h.FirewallOn, h.AntimalwareOn = &f, &a
	h.SetUnknown("secure_boot", "efivars unreadable")
	p := Posture{Hygiene: h}
	if got := p.Unexplained(); len(got) != 0 {
		t.Fatalf("unexplained %v; not_applicable and the optional signature date explain every gap", got)
	}
	h.NotApplicable = nil
	if got := p.Unexplained(); len(got) != 1 || got[0] != "hygiene.rooted_suspected" {
		t.Fatalf("unexplained %v, want hygiene.rooted_suspected", got)
	}
}

func TestCheckPendingUpdates(t *testing.T) {
	base := func() Posture {
		return Posture{CollectedAt: time.Now(), OS: OSIdentity{Platform: "linux/amd64"},
			Patch: &PatchLevel{Pending: []PendingUpdate{{Name: "openssl", Severity: SeverityUnknown, FirstSeen: time.Now()}}}}
	}
	p := base()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*PendingUpdate){
		"no name":       func(u *PendingUpdate) { u.Name = "" },
		"bad severity":  func(u *PendingUpdate) { u.Severity = "important" },
		"no first seen": func(u *PendingUpdate) { u.FirstSeen = time.Time{} },
	} {
		p := base()
		mutate(&p.Patch.Pending[0])
		if err := p.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestKeysAreTextToo: the keys of a report's unknown map and of a command
// result's detail name fields in logs and pages; they are held to the text
// rule like values.
func TestKeysAreTextToo(t *testing.T) {
	p := Posture{CollectedAt: time.Now(), OS: OSIdentity{Platform: "linux/amd64"}, Disk: &DiskEncryption{State: DiskUnknown}}
	p.Disk.SetUnknown("state\x00", "could not tell")
	if err := p.Check(); err == nil {
		t.Error("a NUL in an unknown key passed")
	}
	r := CommandResult{Ref: "c1", Status: ResultDone, Detail: map[string]string{"erased\n": "/dev/vda"}}
	if err := r.Check(); err == nil {
		t.Error("a newline in a detail key passed")
	}
	r.Detail = map[string]string{"erased": "/dev/vda"}
	if err := r.Check(); err != nil {
		t.Errorf("a plain detail: %v", err)
	}
}
