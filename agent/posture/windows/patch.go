package windows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// PatchSource names where Patch's values come from.
const PatchSource = `Microsoft.Update.Session search, Get-HotFix, HKLM\...\WindowsUpdate\Auto Update\RebootRequired`

type pendingUpdate struct {
	Title        string      `json:"Title"`
	MsrcSeverity *string     `json:"MsrcSeverity"`
	Categories   flexStrings `json:"Categories"`
	// LastDeploymentChangeTime is when Microsoft last published the
	// update: its release, as far as Windows Update says.
	LastDeploymentChangeTime json.RawMessage `json:"LastDeploymentChangeTime"`
}

// msrcSeverity maps MSRC's ratings to the SI-2 classes.
var msrcSeverity = map[string]string{"critical": protocol.SeverityCritical, "important": protocol.SeverityHigh,
	"moderate": protocol.SeverityMedium, "low": protocol.SeverityLow}

// securityCategories are the update classifications counted as security
// updates along with anything carrying an MSRC severity. "Critical
// Updates" are Microsoft's non-security critical fixes, but an agency
// wants them applied with the same urgency.
var securityCategories = []string{"Security Updates", "Critical Updates"}

// ParsePendingUpdates counts the updates a Windows Update search found
// not installed. The search script prints {"ResultCode": n, "Updates":
// [...]} so that "no updates" is told apart from "no output"; a bare
// list of updates is read too.
func ParsePendingUpdates(o Output) (total, security int, why string) {
	total, sec, why := ParsePendingSecurity(o, time.Time{})
	return total, len(sec), why
}

// ParsePendingSecurity is ParsePendingUpdates listing the security
// updates: title, MSRC severity (unknown where there is none, as for
// "Critical Updates" without a rating, which are held to the critical
// window) and release date, each first seen at seen.
func ParsePendingSecurity(o Output, seen time.Time) (total int, security []protocol.PendingUpdate, why string) {
	if why := o.failure("Windows Update search"); why != "" {
		return 0, nil, why
	}
	b := bytes.TrimSpace(trimBOM(o.Stdout))
	list := b
	if len(b) > 0 && b[0] == '{' {
		var env struct {
			ResultCode *flexInt         `json:"ResultCode"`
			Updates    *json.RawMessage `json:"Updates"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			return 0, nil, clip("Windows Update search output is not JSON: " + err.Error())
		}
		if env.ResultCode != nil || env.Updates != nil {
			// OperationResultCode: 2 succeeded, 3 succeeded with errors
			// (some updates could not be evaluated, the rest are counted).
			if env.ResultCode == nil || !env.ResultCode.set || (env.ResultCode.v != 2 && env.ResultCode.v != 3) {
				rc := "missing"
				if env.ResultCode != nil {
					rc = env.ResultCode.raw
				}
				return 0, nil, "Windows Update search did not succeed: ResultCode " + rc
			}
			list = nil
			if env.Updates != nil {
				list = *env.Updates
			}
		}
	}
	items, err := jsonList(list)
	if err != nil {
		return 0, nil, clip("Windows Update search output is not a list of updates: " + err.Error())
	}
	for _, it := range items {
		var u pendingUpdate
		if err := json.Unmarshal(it, &u); err != nil {
			return 0, nil, clip("Windows Update search output is not a list of updates: " + err.Error())
		}
		total++
		if !isSecurity(u) {
			continue
		}
		pu := protocol.PendingUpdate{Name: clip(strings.TrimSpace(u.Title)), Severity: protocol.SeverityUnknown, FirstSeen: seen}
		if pu.Name == "" {
			pu.Name = "untitled update"
		}
		if u.MsrcSeverity != nil {
			if sev, ok := msrcSeverity[strings.ToLower(strings.TrimSpace(*u.MsrcSeverity))]; ok {
				pu.Severity = sev
			}
		}
		// An unreadable date is no reason to drop the update: its clock
		// then starts when the agent first saw it.
		if t, err := installedOn(u.LastDeploymentChangeTime); err == nil && !t.IsZero() {
			pu.ReleasedAt = &t
		}
		security = append(security, pu)
	}
	return total, security, ""
}

func isSecurity(u pendingUpdate) bool {
	if u.MsrcSeverity != nil && strings.TrimSpace(*u.MsrcSeverity) != "" {
		return true
	}
	for _, c := range u.Categories {
		for _, s := range securityCategories {
			if strings.EqualFold(strings.TrimSpace(c), s) {
				return true
			}
		}
	}
	return false
}

// msDate is the .NET JSON date ConvertTo-Json prints under Windows
// PowerShell 5.1: milliseconds since 1970 UTC, with an optional offset
// that only says which zone the value was local to.
var msDate = regexp.MustCompile(`^/Date\((-?\d+)([+-]\d{4})?\)/$`)

// ParseLastHotFix reads when the newest hotfix was installed from
// Get-HotFix | Sort-Object InstalledOn -Descending | Select-Object
// -First 1 HotFixID,InstalledOn | ConvertTo-Json.
func ParseLastHotFix(o Output) (time.Time, string) {
	if why := o.failure("Get-HotFix"); why != "" {
		return time.Time{}, why
	}
	items, err := jsonList(o.Stdout)
	if err != nil {
		return time.Time{}, clip("Get-HotFix output is not JSON: " + err.Error())
	}
	var newest time.Time
	var why string
	for _, it := range items {
		var h struct {
			HotFixID    string          `json:"HotFixID"`
			InstalledOn json.RawMessage `json:"InstalledOn"`
		}
		if err := json.Unmarshal(it, &h); err != nil {
			return time.Time{}, clip("Get-HotFix output is not a hotfix: " + err.Error())
		}
		t, err := installedOn(h.InstalledOn)
		if err != nil {
			why = clip(fmt.Sprintf("hotfix %s install date: %v", h.HotFixID, err))
			continue
		}
		if t.After(newest) {
			newest = t
		}
	}
	switch {
	case !newest.IsZero():
		return newest, ""
	case why != "":
		return time.Time{}, why
	}
	return time.Time{}, "Get-HotFix lists no installed updates"
}

// installedOn reads InstalledOn as Windows PowerShell 5.1 prints it
// ("/Date(ms)/", or an object whose "value" is that because InstalledOn
// is an extended property), or as PowerShell 7 does (ISO 8601).
func installedOn(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, errors.New("not recorded")
	}
	if raw[0] == '{' {
		var o struct {
			Value    json.RawMessage `json:"value"`
			DateTime string          `json:"DateTime"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			return time.Time{}, err
		}
		if len(o.Value) > 0 {
			return installedOn(o.Value)
		}
		// DateTime is the local time in the machine's culture; only the
		// invariant English form can be read without knowing it.
		t, err := time.Parse("Monday, January 2, 2006 3:04:05 PM", o.DateTime)
		if err != nil {
			return time.Time{}, fmt.Errorf("unreadable DateTime %q", clip(o.DateTime))
		}
		return t, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("not a date: %s", clip(string(raw)))
	}
	if m := msDate.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not a date: %q", clip(s))
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a date: %q", clip(s))
}

// RebootRequired reads the keys Windows creates while an installed update
// waits for a restart: any one existing means a restart is due.
func RebootRequired(keys map[string]Key) (*bool, string) {
	var errs []string
	for name, k := range keys {
		if k.Exists {
			return boolPtr(true), ""
		}
		if k.Err != "" {
			errs = append(errs, name+": "+k.Err)
		}
	}
	if len(errs) > 0 || len(keys) == 0 {
		return nil, clip("could not read " + strings.Join(errs, "; "))
	}
	return boolPtr(false), ""
}

// Patch assembles the patch section. searched is when the update search
// ran.
func Patch(search, hotfix Output, reboot map[string]Key, searched time.Time) *protocol.PatchLevel {
	p := &protocol.PatchLevel{}
	p.Source = PatchSource
	if total, sec, why := ParsePendingSecurity(search, searched.UTC()); why != "" {
		p.SetUnknown("pending_total", why)
		p.SetUnknown("pending_security", why)
	} else {
		p.PendingTotal, p.PendingSecurity, p.Pending = intPtr(total), intPtr(len(sec)), sec
		t := searched.UTC()
		p.CheckedAt = &t
	}
	if t, why := ParseLastHotFix(hotfix); why != "" {
		p.SetUnknown("last_update", why)
	} else {
		p.LastUpdate = &t
	}
	if r, why := RebootRequired(reboot); why != "" {
		p.SetUnknown("reboot_required", why)
	} else {
		p.RebootRequired = r
	}
	return p
}
