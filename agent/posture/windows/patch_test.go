package windows

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

func TestParsePendingUpdates(t *testing.T) {
	cases := []struct {
		name           string
		out            Output
		total, sec     int
		wantUnreadable bool
	}{
		{name: "pending", out: Output{Stdout: fixture(t, "updates_pending.json")}, total: 5, sec: 3},
		{name: "single object", out: Output{Stdout: fixture(t, "updates_single.json")}, total: 1, sec: 1},
		{name: "none", out: Output{Stdout: fixture(t, "updates_none.json")}},
		{name: "null updates", out: Output{Stdout: []byte(`{"ResultCode":2,"Updates":null}`)}},
		{name: "value wrapper, with errors", out: Output{Stdout: fixture(t, "updates_psobject_array.json")}, total: 2, sec: 1},
		{name: "bare list", out: Output{Stdout: []byte(`[{"Title":"a","MsrcSeverity":"Low"},{"Title":"b"}]`)}, total: 2, sec: 1},
		{name: "bare object", out: Output{Stdout: []byte(`{"Title":"a","MsrcSeverity":null,"Categories":"Critical Updates"}`)}, total: 1, sec: 1},
		{name: "search failed", out: Output{Stdout: []byte(`{"ResultCode":4,"Updates":[]}`)}, wantUnreadable: true},
		{name: "result code garbled", out: Output{Stdout: []byte(`{"ResultCode":"orcFailed","Updates":[]}`)}, wantUnreadable: true},
		{name: "no result code", out: Output{Stdout: []byte(`{"Updates":[]}`)}, wantUnreadable: true},
		{name: "COM error", out: Output{Stderr: fixture(t, "updates_search_failed.stderr"), Err: errExit1}, wantUnreadable: true},
		{name: "timeout", out: Output{Err: errTimeout}, wantUnreadable: true},
		{name: "empty", out: Output{}, wantUnreadable: true},
		{name: "garbled", out: Output{Stdout: []byte("Title : 2024-03 Cumulative Update")}, wantUnreadable: true},
		{name: "updates not objects", out: Output{Stdout: []byte(`{"ResultCode":2,"Updates":[1,2]}`)}, wantUnreadable: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			total, sec, why := ParsePendingUpdates(c.out)
			if c.wantUnreadable {
				if why == "" {
					t.Fatalf("read %d %d", total, sec)
				}
				return
			}
			if why != "" || total != c.total || sec != c.sec {
				t.Fatalf("got %d %d %q, want %d %d", total, sec, why, c.total, c.sec)
			}
		})
	}
}

// TestPendingSecurityUpdates: MSRC severities map to the SI-2 classes,
// an update without one (a "Critical Updates" classification) is unknown
// and so held to the critical window, and LastDeploymentChangeTime is the
// release date in either PowerShell's form.
func TestPendingSecurityUpdates(t *testing.T) {
	seen := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	_, got, why := ParsePendingSecurity(Output{Stdout: fixture(t, "updates_pending.json")}, seen)
	if why != "" || len(got) != 3 || got[0].Severity != "critical" || got[1].Severity != "high" || got[2].Severity != "unknown" ||
		got[0].ReleasedAt != nil || !got[0].FirstSeen.Equal(seen) || got[2].Name != "Windows Malicious Software Removal Tool x64 - v5.122 (KB890830)" {
		t.Fatalf("pending %+v %q", got, why)
	}
	out := `{"ResultCode":2,"Updates":[` +
		`{"Title":"KB1","MsrcSeverity":"Moderate","Categories":["Security Updates"],"LastDeploymentChangeTime":"/Date(1796019120000)/"},` +
		`{"Title":"KB2","MsrcSeverity":"Low","Categories":["Security Updates"],"LastDeploymentChangeTime":"2026-11-10T00:00:00"},` +
		`{"Title":"KB3","MsrcSeverity":"Important","Categories":["Security Updates"],"LastDeploymentChangeTime":"soon"}]}`
	_, got, why = ParsePendingSecurity(Output{Stdout: []byte(out)}, seen)
	rel := func(i int) time.Time {
		if got[i].ReleasedAt == nil {
			return time.Time{}
		}
		return *got[i].ReleasedAt
	}
	if why != "" || len(got) != 3 || got[0].Severity != "medium" || got[1].Severity != "low" || got[2].Severity != "high" ||
		!rel(0).Equal(time.Date(2026, 11, 30, 6, 12, 0, 0, time.UTC)) || !rel(1).Equal(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)) || got[2].ReleasedAt != nil {
		t.Fatalf("pending %+v %q", got, why)
	}
	p := Patch(Output{Stdout: []byte(out)}, Output{Stdout: fixture(t, "hotfix_ps51.json")}, nil, seen)
	if len(p.Pending) != 3 || *p.PendingSecurity != 3 {
		t.Fatalf("patch %+v", p)
	}
	checkReport(t, protocol.Posture{Patch: p})
}

func TestParseLastHotFix(t *testing.T) {
	cases := []struct {
		name string
		out  Output
		want time.Time
	}{
		{"ps 5.1 extended property", Output{Stdout: fixture(t, "hotfix_ps51.json")}, time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)},
		{"ps 5.1 plain date", Output{Stdout: fixture(t, "hotfix_plain.json")}, time.UnixMilli(1700000000000).UTC()},
		{"ps 7", Output{Stdout: fixture(t, "hotfix_ps7.json")}, time.Date(2024, 3, 12, 23, 0, 0, 0, time.UTC)},
		{"offset suffix", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":"/Date(1700000000000+0100)/"}`)}, time.UnixMilli(1700000000000).UTC()},
		{"DateTime only", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":{"DateTime":"Tuesday, November 14, 2023 12:00:00 AM"}}`)}, time.Date(2023, 11, 14, 0, 0, 0, 0, time.UTC)},
		{"newest of several", Output{Stdout: []byte(`[{"HotFixID":"KB1","InstalledOn":null},{"HotFixID":"KB2","InstalledOn":"/Date(1700000000000)/"}]`)}, time.UnixMilli(1700000000000).UTC()},
		{"no date", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":null}`)}, time.Time{}},
		{"localized DateTime", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":{"DateTime":"mercredi 13 mars 2024 00:00:00"}}`)}, time.Time{}},
		{"garbled date", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":"13/03/2024"}`)}, time.Time{}},
		{"number date", Output{Stdout: []byte(`{"HotFixID":"KB1","InstalledOn":1710288000}`)}, time.Time{}},
		{"empty", Output{}, time.Time{}},
		{"empty list", Output{Stdout: []byte(`[]`)}, time.Time{}},
		{"failed", Output{Err: errExit1, Stderr: []byte("Get-HotFix : Access is denied")}, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, why := ParseLastHotFix(c.out)
			if c.want.IsZero() {
				if why == "" {
					t.Fatalf("read %v", got)
				}
				return
			}
			if why != "" || !got.Equal(c.want) {
				t.Fatalf("got %v %q, want %v", got, why, c.want)
			}
		})
	}
}

func TestRebootRequired(t *testing.T) {
	cases := []struct {
		name string
		keys map[string]Key
		want *bool
	}{
		{"pending", map[string]Key{"wu": {Exists: true}, "cbs": {}}, boolPtr(true)},
		{"pending despite an error", map[string]Key{"wu": {Err: "Access is denied."}, "cbs": {Exists: true}}, boolPtr(true)},
		{"none", map[string]Key{"wu": {}, "cbs": {}}, boolPtr(false)},
		{"unreadable", map[string]Key{"wu": {Err: "Access is denied."}, "cbs": {}}, nil},
		{"nothing read", nil, nil},
	}
	for _, c := range cases {
		got, why := RebootRequired(c.keys)
		if !eqPtr(got, c.want) || (got == nil) != (why != "") {
			t.Errorf("%s: got %v %q", c.name, deref(got), why)
		}
	}
}

func TestPatch(t *testing.T) {
	now := time.Date(2024, 3, 20, 9, 0, 0, 0, time.FixedZone("EST", -5*3600))
	p := Patch(Output{Stdout: fixture(t, "updates_pending.json")}, Output{Stdout: fixture(t, "hotfix_ps51.json")}, map[string]Key{"wu": {Exists: true}}, now)
	if *p.PendingTotal != 5 || *p.PendingSecurity != 3 || !p.LastUpdate.Equal(time.Date(2024, 3, 13, 0, 0, 0, 0, time.UTC)) ||
		!*p.RebootRequired || !p.CheckedAt.Equal(now) || len(p.Unknown) != 0 {
		t.Fatalf("got %+v", p)
	}
	checkReport(t, protocol.Posture{Patch: p})
	p = Patch(Output{Err: errTimeout}, Output{}, map[string]Key{"wu": {Err: "Access is denied."}}, now)
	if p.PendingTotal != nil || p.PendingSecurity != nil || p.LastUpdate != nil || p.RebootRequired != nil || p.CheckedAt != nil {
		t.Fatalf("got %+v", p)
	}
	for _, f := range []string{"pending_total", "pending_security", "last_update", "reboot_required"} {
		if p.Unknown[f] == "" {
			t.Errorf("no reason for %s", f)
		}
	}
	checkReport(t, protocol.Posture{Patch: p})
}

func FuzzParsePendingUpdates(f *testing.F) {
	for _, n := range []string{"updates_pending.json", "updates_single.json", "updates_none.json", "updates_psobject_array.json"} {
		f.Add(fixture(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		total, sec, why := ParsePendingUpdates(Output{Stdout: b})
		if why == "" && (sec > total || total < 0) {
			t.Fatalf("total %d security %d", total, sec)
		}
		if why != "" && (total != 0 || sec != 0) {
			t.Fatal("counts with a reason")
		}
		// Whatever the search printed, the list must pass the wire check.
		p := Patch(Output{Stdout: b}, Output{}, nil, time.Unix(1, 0))
		checkReport(t, protocol.Posture{Patch: p})
	})
}

func FuzzParseLastHotFix(f *testing.F) {
	for _, n := range []string{"hotfix_ps51.json", "hotfix_plain.json", "hotfix_ps7.json"} {
		f.Add(fixture(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, why := ParseLastHotFix(Output{Stdout: b})
		if (why == "") == got.IsZero() {
			t.Fatalf("time %v reason %q", got, why)
		}
		p := &protocol.PatchLevel{}
		if why != "" {
			p.SetUnknown("last_update", why)
		}
		checkReport(t, protocol.Posture{Patch: p})
	})
}
