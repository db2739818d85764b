package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestIncidentReportCheck(t *testing.T) {
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	before := start.Add(-time.Minute)
	lat := 91.0
	ok := IncidentReport{Kind: "loss_of_control", LockState: "unknown", StartedAt: start, Location: "Main St"}
	if err := ok.Check(); err != nil {
		t.Fatalf("valid report refused: %v", err)
	}
	for name, r := range map[string]IncidentReport{
		"kind":        {Kind: "stolen", StartedAt: start},
		"lock state":  {Kind: "total_loss", LockState: "open", StartedAt: start},
		"no start":    {Kind: "compromise"},
		"ends before": {Kind: "compromise", StartedAt: start, EndedAt: &before},
		"latitude":    {Kind: "compromise", StartedAt: start, Latitude: &lat},
		"location":    {Kind: "compromise", StartedAt: start, Location: strings.Repeat("x", 1025)},
	} {
		if err := r.Check(); err == nil {
			t.Errorf("%s: accepted %+v", name, r)
		}
	}
}

func TestIncidentFramesThroughDecode(t *testing.T) {
	frame, _ := Encode(TypeIncidentReport, "r1", time.Now(), IncidentReport{Kind: "total_loss", StartedAt: time.Now()})
	env, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var r IncidentReport
	if err := DecodeBody(env, &r); err != nil || r.Kind != "total_loss" {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	bad, _ := Encode(TypeDeviceState, "s1", time.Now(), DeviceState{Compliance: "fine"})
	env, _ = Decode(bad)
	if err := DecodeBody(env, &DeviceState{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown compliance accepted: %v", err)
	}
}

func FuzzIncidentBodies(f *testing.F) {
	r, _ := json.Marshal(IncidentReport{Kind: "loss_of_control", StartedAt: time.Now(), Location: "x"})
	s, _ := json.Marshal(DeviceState{Compliance: ComplianceQuarantined, Devices: []OwnedDevice{{ID: "d", Name: "n"}}})
	b, _ := json.Marshal(BluetoothRequest{Address: "AA:BB:CC:DD:EE:FF", Reason: "r", Supervisor: "sgt"})
	f.Add(r)
	f.Add(s)
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		var ir IncidentReport
		if DecodeBody(Envelope{Type: TypeIncidentReport, Body: body}, &ir) == nil {
			if ir.Check() != nil {
				t.Fatal("accepted report fails its own check")
			}
		}
		DecodeBody(Envelope{Type: TypeDeviceState, Body: body}, &DeviceState{})
		var br BluetoothRequest
		if DecodeBody(Envelope{Type: TypeBluetoothRequest, Body: body}, &br) == nil && br.Check() != nil {
			t.Fatal("accepted request fails its own check")
		}
	})
}
