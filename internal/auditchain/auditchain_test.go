package auditchain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func chain(n int) []Entry {
	var es []Entry
	prev := ""
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i := 1; i <= n; i++ {
		e := Entry{Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Minute), Actor: "local:t", Source: "local",
			Action: "test", Target: fmt.Sprint(i), Outcome: "success", Details: fmt.Sprintf(`{"i":"%d"}`, i), PrevHash: prev}
		e.Hash = Hash(e)
		prev = e.Hash
		es = append(es, e)
	}
	return es
}

func export(t *testing.T, es []Entry, cps []Checkpoint) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range es {
		var d map[string]string
		json.Unmarshal([]byte(e.Details), &d)
		enc.Encode(ExportEntry{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Actor: e.Actor, Source: e.Source, Action: e.Action,
			Target: e.Target, Outcome: e.Outcome, Details: d, PrevHash: e.PrevHash, Hash: e.Hash})
	}
	for _, c := range cps {
		enc.Encode(ExportCheckpoint{Checkpoint: &c})
	}
	return b.Bytes()
}

// TestVerifierCatchesARecomputedChain: a chain rewritten at one entry
// and recomputed from there is intact on its own, but no longer meets
// the checkpoint signed before the rewrite.
func TestVerifierCatchesARecomputedChain(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	es := chain(10)
	cp := Sign(key, 8, es[7].Hash, time.Now())
	es[3].Target = "rewritten"
	for i := 3; i < len(es); i++ {
		if i > 0 {
			es[i].PrevHash = es[i-1].Hash
		}
		es[i].Hash = Hash(es[i])
	}
	alone := NewVerifier(nil, nil)
	for _, e := range es {
		alone.Add(e)
	}
	if res := alone.Finish(0, "", false); !res.OK {
		t.Fatalf("the recomputed chain should pass on its own (that is the attack): %+v", res)
	}
	v := NewVerifier(pub, []Checkpoint{cp})
	for _, e := range es {
		v.Add(e)
	}
	res := v.Finish(0, "", false)
	if res.OK || *res.Broken != 8 || !strings.Contains(res.Reason, "checkpoint") {
		t.Fatalf("against the checkpoint: %+v", res)
	}
}

func TestVerifyExport(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	es := chain(6)
	cps := []Checkpoint{Sign(key, 3, es[2].Hash, time.Now()), Sign(key, 6, es[5].Hash, time.Now())}
	good := export(t, es, cps)
	if res, err := VerifyExport(bytes.NewReader(good), pub); err != nil || !res.OK || res.Entries != 6 || res.Checkpoint.Seq != 6 {
		t.Fatalf("intact export: %+v %v", res, err)
	}
	if res, _ := VerifyExport(bytes.NewReader(good), otherPub); res.OK {
		t.Fatal("an export verified under another key")
	}
	altered := bytes.Replace(good, []byte(`"target":"2"`), []byte(`"target":"x"`), 1)
	if res, _ := VerifyExport(bytes.NewReader(altered), pub); res.OK || *res.Broken != 2 {
		t.Fatalf("altered export: %+v", res)
	}
	if res, _ := VerifyExport(bytes.NewReader(export(t, es[:5], cps)), pub); res.OK {
		t.Fatal("an export cut short of its newest checkpoint verified")
	}
	if res, _ := VerifyExport(bytes.NewReader(export(t, es, nil)), pub); res.OK {
		t.Fatal("an export without checkpoints verified")
	}
	// Pruned through the checkpoint of entry 3: entry 4 links to it.
	if res, _ := VerifyExport(bytes.NewReader(export(t, es[3:], cps)), pub); !res.OK || res.FirstSeq != 4 {
		t.Fatalf("pruned export: %+v", res)
	}
	if res, _ := VerifyExport(bytes.NewReader(export(t, es[4:], cps)), pub); res.OK {
		t.Fatal("an export starting where no checkpoint vouches verified")
	}
}

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	got, err := ParsePublicKeyPEM([]byte(PublicKeyPEM(pub)))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("%v %v", got, err)
	}
}

func FuzzReadExport(f *testing.F) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	es := chain(3)
	var t testing.T
	f.Add(export(&t, es, []Checkpoint{Sign(key, 3, es[2].Hash, time.Now())}))
	f.Add([]byte(`{"checkpoint":{"seq":1,"hash":"00","time":"x","signature":"!"}}`))
	f.Add([]byte("{}\n\n[]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, cps, err := ReadExport(bytes.NewReader(b))
		if err != nil {
			return
		}
		v := NewVerifier(pub, cps)
		for _, e := range es {
			v.Add(e)
		}
		v.Finish(0, "", false)
	})
}

func FuzzParsePublicKeyPEM(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add([]byte(PublicKeyPEM(pub)))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, err := ParsePublicKeyPEM(b); err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatalf("parsed a key of %d bytes", len(k))
		}
	})
}
