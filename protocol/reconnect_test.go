package protocol

import (
	"testing"
	"time"
)

func TestReconnectHintBoundsTheSpread(t *testing.T) {
	for _, ms := range []int64{0, 1, MaxReconnectSpread.Milliseconds()} {
		h := ReconnectHint{SpreadMS: ms}
		if err := h.Check(); err != nil {
			t.Errorf("spread %d ms refused: %v", ms, err)
		}
	}
	for _, ms := range []int64{-1, MaxReconnectSpread.Milliseconds() + 1} {
		h := ReconnectHint{SpreadMS: ms}
		if err := h.Check(); err == nil {
			t.Errorf("spread %d ms accepted", ms)
		}
	}
	frame, err := Encode(TypeReconnectHint, "h1", time.Now(), ReconnectHint{SpreadMS: 1500})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var got ReconnectHint
	if err := DecodeBody(env, &got); err != nil || got.Spread() != 1500*time.Millisecond {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}
