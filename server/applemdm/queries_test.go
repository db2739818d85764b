package applemdm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// baseline holds every device to the shipped cjis-baseline profile,
// loaded by the real compliance service.
type baseline struct{ c *compliance.Service }

func (b baseline) ProfileFor(context.Context, string) (*profiles.Profile, error) {
	p, _ := b.c.Profile(profiles.BaselineName)
	return p, nil
}

// newPostureEnv is newEnv with the posture queries, the real compliance
// service and one audit log for both.
func newPostureEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, func(st *store.Store, _ *pki.CA, aud *audit.Log) []applemdm.Option {
		comp := compliance.New(st, aud)
		if err := comp.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		return []applemdm.Option{applemdm.WithPosture(st, comp), applemdm.WithQueries(st, baseline{comp}, aud, time.Hour)}
	})
}

// next fetches the next command and fails unless it is of kind.
func next(t *testing.T, dev *appletest.Device, kind string) *appletest.Command {
	t.Helper()
	c := dev.Next(t)
	if c == nil || c.RequestType != kind {
		t.Fatalf("device fetched %+v, want %s", c, kind)
	}
	return c
}

// installed decodes an InstallProfile's payload.
func installed(t *testing.T, c *appletest.Command) (id, uuid string, passcode map[string]any) {
	t.Helper()
	raw, _ := c.Fields["Payload"].([]byte)
	var doc struct {
		PayloadIdentifier, PayloadUUID string
		PayloadContent                 []map[string]any
	}
	if err := plist.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("InstallProfile payload: %v", err)
	}
	for _, p := range doc.PayloadContent {
		if p["PayloadType"] == "com.apple.mobiledevice.passwordpolicy" {
			passcode = p
		}
	}
	return doc.PayloadIdentifier, doc.PayloadUUID, passcode
}

// posture is the device's latest stored report.
func (e *env) posture(t *testing.T, id string) protocol.Posture {
	t.Helper()
	d, err := e.st.GetDevice(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var p protocol.Posture
	if err := json.Unmarshal([]byte(d.Posture), &p); err != nil {
		t.Fatalf("posture %q: %v", d.Posture, err)
	}
	return p
}

// An enrolled iPhone is sent Cordon's passcode profile and the posture
// queries, once; its answers become its posture.
func TestEnrollmentInstallsTheProfileAndQueriesPosture(t *testing.T) {
	e := newPostureEnv(t)
	dev, id := e.enrolled(t, "00008110-0001POSTURE000001")
	c := next(t, dev, applemdm.ReqInstallProfile)
	pid, _, pc := installed(t, c)
	if pid != "org.cordon-mdm.profile.cjis-baseline" || fmt.Sprint(pc["maxFailedAttempts"]) != "10" || fmt.Sprint(pc["minLength"]) != "6" || pc["forcePIN"] != true {
		t.Fatalf("profile %s, passcode payload %v", pid, pc)
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	if c == nil || c.RequestType != applemdm.ReqDeviceInformation {
		t.Fatalf("after the profile: %+v", c)
	}
	if qs, _ := c.Fields["Queries"].([]any); len(qs) < 10 {
		t.Fatalf("DeviceInformation queries %v", c.Fields["Queries"])
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"QueryResponses": map[string]any{
		"OSVersion": "17.5.1", "BuildVersion": "21F90", "ProductName": "iPhone15,2", "DeviceName": "Patrol 12",
		"IsSupervised": true, "BluetoothMAC": "a4:83:e7:00:00:01"}})
	p := e.posture(t, id)
	if p.OS.Name != "iOS" || p.OS.Version != "17.5.1" || p.OS.Build != "21F90" || p.OS.Hostname != "Patrol 12" || p.OS.Platform != "ios/arm64" {
		t.Fatalf("os %+v", p.OS)
	}
	if p.Bluetooth == nil || p.Bluetooth.Adapter != "A4:83:E7:00:00:01" || p.Bluetooth.Unknown["powered"] == "" {
		t.Fatalf("bluetooth %+v", p.Bluetooth)
	}
	if en, _ := e.st.GetAppleEnrollment(t.Context(), id); !en.Supervised || en.QueriedAt == nil {
		t.Fatalf("enrollment %+v: want supervised and queried", en)
	}
	for _, want := range []string{applemdm.ReqSecurityInfo, applemdm.ReqProfileList, applemdm.ReqInstalledApplicationList, applemdm.ReqAvailableOSUpdates} {
		if c == nil || c.RequestType != want {
			t.Fatalf("fetched %+v, want %s", c, want)
		}
		if want == applemdm.ReqInstalledApplicationList && c.Fields["ManagedAppsOnly"] != false {
			t.Fatalf("ManagedAppsOnly %v", c.Fields["ManagedAppsOnly"])
		}
		c = dev.Answer(t, c.UUID, applemdm.StatusError, nil)
	}
	if c != nil {
		t.Fatalf("queue not empty: %+v", c)
	}
	// A second TokenUpdate (a new push token) is no new enrollment.
	if code := dev.TokenUpdate(t); code != http.StatusOK || dev.Next(t) != nil {
		t.Fatal("a repeated TokenUpdate queued the round again")
	}
	if got := e.actions(t, "device:"+id); !slices.Contains(got, applemdm.ActionProfileInstalled) {
		t.Fatalf("audit %v", got)
	}
}

// SecurityInfo on an iPhone: passcode and data protection, and what
// Apple does not tell recorded as unknown with why.
func TestSecurityInfoOnAnIPhone(t *testing.T) {
	e := newPostureEnv(t)
	dev, id := e.enrolled(t, "00008110-0001POSTURE000002")
	c := next(t, dev, applemdm.ReqInstallProfile)
	_, puuid, _ := installed(t, c)
	dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	// answer answers the next kind queued, refusing what comes before.
	answer := func(kind string, extra map[string]any) {
		t.Helper()
		for c := dev.Next(t); c != nil; c = dev.Answer(t, c.UUID, applemdm.StatusError, nil) {
			if c.RequestType == kind {
				dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, extra)
				return
			}
		}
		t.Fatalf("no %s queued", kind)
	}
	answer(applemdm.ReqSecurityInfo, map[string]any{"SecurityInfo": map[string]any{"HardwareEncryptionCaps": 3, "PasscodePresent": false,
		"PasscodeCompliant": false, "PasscodeCompliantWithProfiles": false}})
	p := e.posture(t, id)
	if p.LockPolicy == nil || p.LockPolicy.Enabled == nil || *p.LockPolicy.Enabled || p.Disk == nil || p.Disk.State != protocol.DiskUnencrypted {
		t.Fatalf("without a passcode: lock policy %+v, disk %+v", p.LockPolicy, p.Disk)
	}
	if p.Hygiene == nil || p.Hygiene.RootedSuspected != nil || p.Hygiene.Unknown["rooted_suspected"] == "" || p.Patch.Unknown["pending_security"] == "" {
		t.Fatalf("unknowns not explained: hygiene %+v, patch %+v", p.Hygiene, p.Patch)
	}
	if p.LockPolicy.Unknown["timeout_seconds"] == "" {
		t.Fatalf("timeout without the profile listed: %+v", p.LockPolicy)
	}

	answer(applemdm.ReqProfileList, map[string]any{"ProfileList": []map[string]any{
		{"PayloadIdentifier": "org.cordon-mdm.profile.cjis-baseline", "PayloadUUID": puuid}}})
	// On demand: a fresh round.
	if err := e.mdm.Refresh(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	answer(applemdm.ReqSecurityInfo, map[string]any{"SecurityInfo": map[string]any{"HardwareEncryptionCaps": 3, "PasscodePresent": true,
		"PasscodeCompliant": true, "PasscodeCompliantWithProfiles": true}})
	p = e.posture(t, id)
	if !*p.LockPolicy.Enabled || p.LockPolicy.TimeoutSeconds == nil || *p.LockPolicy.TimeoutSeconds != 15*60 || p.Disk.State != protocol.DiskEncrypted {
		t.Fatalf("with a passcode and the profile: lock policy %+v, disk %+v", p.LockPolicy, p.Disk)
	}
	if p.Profiles == nil || len(p.Profiles.Identifiers) != 1 {
		t.Fatalf("profiles %+v", p.Profiles)
	}
	if p.Lock == nil || p.Lock.State != protocol.LockUnknown {
		t.Fatalf("lock %+v", p.Lock)
	}
}

// A Mac: FileVault, SIP and the firewall, platform macos with its
// architecture.
func TestSecurityInfoOnAMac(t *testing.T) {
	e := newPostureEnv(t)
	dev := appletest.IssuedBy(t, e.ca, e.url, "00008110-0001POSTUREMAC001", "Mac14,2")
	if dev.Authenticate(t, "desk mac") != http.StatusOK || dev.TokenUpdate(t) != http.StatusOK {
		t.Fatal("mac enrollment")
	}
	id := applemdm.DeviceID(dev.UDID)
	c := next(t, dev, applemdm.ReqInstallProfile)
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"QueryResponses": map[string]any{
		"OSVersion": "14.5", "ProductName": "Mac14,2", "IsAppleSilicon": true, "DeviceName": "desk mac"}})
	dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"SecurityInfo": map[string]any{
		"FDE_Enabled": true, "SystemIntegrityProtectionEnabled": true, "FirewallSettings": map[string]any{"FirewallEnabled": false}}})
	p := e.posture(t, id)
	if p.OS.Platform != "macos/arm64" || p.OS.Name != "macOS" {
		t.Fatalf("os %+v", p.OS)
	}
	h := p.Hygiene
	if p.Disk.State != protocol.DiskEncrypted || p.Disk.Scheme != "filevault" || h.SecureBoot == nil || !*h.SecureBoot ||
		h.FirewallOn == nil || *h.FirewallOn || h.Unknown["antimalware_on"] == "" {
		t.Fatalf("disk %+v, hygiene %+v", p.Disk, h)
	}
	if p.LockPolicy.Enabled != nil || p.LockPolicy.Unknown["enabled"] == "" {
		t.Fatalf("a Mac's lock policy before its profiles are listed: %+v", p.LockPolicy)
	}
}

// ProfileList keeps Cordon's profile as the device's compliance profile
// wants it: missing or another version installed again, a stale Cordon
// profile removed, foreign profiles left alone.
func TestProfileListReconcilesCordonsProfile(t *testing.T) {
	e := newPostureEnv(t)
	dev, id := e.enrolled(t, "00008110-0001POSTURE000003")
	c := next(t, dev, applemdm.ReqInstallProfile)
	_, puuid, _ := installed(t, c)
	c = dev.Answer(t, c.UUID, applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{
		{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "USEnglishDescription": "The user declined"}}})
	for c != nil && c.RequestType != applemdm.ReqProfileList {
		c = dev.Answer(t, c.UUID, applemdm.StatusError, nil)
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"ProfileList": []map[string]any{
		{"PayloadIdentifier": "com.agency.wifi", "PayloadUUID": "A"},
		{"PayloadIdentifier": "org.cordon-mdm.profile.old-profile", "PayloadUUID": "B"}}})
	for c != nil && (c.RequestType == applemdm.ReqInstalledApplicationList || c.RequestType == applemdm.ReqAvailableOSUpdates) {
		c = dev.Answer(t, c.UUID, applemdm.StatusError, nil)
	}
	if c == nil || c.RequestType != applemdm.ReqInstallProfile {
		t.Fatalf("after a ProfileList without Cordon's profile: %+v", c)
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	if c == nil || c.RequestType != applemdm.ReqRemoveProfile || c.Fields["Identifier"] != "org.cordon-mdm.profile.old-profile" {
		t.Fatalf("stale profile: %+v", c)
	}
	if next := dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil); next != nil {
		t.Fatalf("queue %+v", next)
	}
	// The current version listed: nothing to do.
	if err := e.mdm.Refresh(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	for c = dev.Next(t); c != nil && c.RequestType != applemdm.ReqProfileList; c = dev.Answer(t, c.UUID, applemdm.StatusError, nil) {
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"ProfileList": []map[string]any{
		{"PayloadIdentifier": "org.cordon-mdm.profile.cjis-baseline", "PayloadUUID": puuid}}})
	if c == nil || c.RequestType != applemdm.ReqInstalledApplicationList {
		t.Fatalf("after the current profile listed: %+v", c)
	}
	var failed, done int
	if err := e.st.WalkAudit(t.Context(), func(a *store.AuditEntry) error {
		var d map[string]string
		json.Unmarshal([]byte(a.Details), &d)
		switch {
		case a.Action == applemdm.ActionProfileInstalled && a.Outcome == audit.Failure &&
			d["error"] == "MCProfileErrorDomain 4001: The user declined" && d["profile"] == "cjis-baseline":
			failed++
		case a.Action == applemdm.ActionProfileInstalled && a.Outcome == audit.Success:
			done++
		case a.Action == applemdm.ActionProfileRemoved && d["profile"] != "org.cordon-mdm.profile.old-profile":
			t.Errorf("removal entry %+v", a)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if failed != 1 || done != 1 {
		t.Fatalf("install entries: %d failed, %d done", failed, done)
	}
}

// The sweep asks devices not asked within the interval, and only them.
func TestQueryDueAsksOnlyStaleDevices(t *testing.T) {
	e := newPostureEnv(t)
	dev, id := e.enrolled(t, "00008110-0001POSTURE000004")
	for c := dev.Next(t); c != nil; c = dev.Answer(t, c.UUID, applemdm.StatusError, nil) {
	}
	if err := e.mdm.QueryDue(t.Context(), time.Now()); err != nil || dev.Next(t) != nil {
		t.Fatalf("a device asked just now was asked again (%v)", err)
	}
	if err := e.mdm.QueryDue(t.Context(), time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if en, _ := e.st.GetAppleEnrollment(t.Context(), id); en.QueriedAt == nil || time.Until(*en.QueriedAt) < time.Hour {
		t.Fatalf("queried_at %v", en.QueriedAt)
	}
	// The device stays silent through the next due time: its round is
	// still queued, and no second one is added.
	if err := e.mdm.QueryDue(t.Context(), time.Now().Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for c := next(t, dev, applemdm.ReqDeviceInformation); c != nil; c = dev.Answer(t, c.UUID, applemdm.StatusError, nil) {
		got = append(got, c.RequestType)
	}
	if len(got) != 5 {
		t.Fatalf("queued for a silent device: %v, want one round", got)
	}
}

// AvailableOSUpdates: each point release not installed is a pending
// update, first seen when Cordon first saw it; a major upgrade is not
// counted; a refusal leaves the patch level unknown, saying why.
func TestAvailableOSUpdatesArePendingUpdates(t *testing.T) {
	e := newPostureEnv(t)
	dev, id := e.enrolled(t, "00008110-0001POSTURE000005")
	updates := map[string]any{"AvailableOSUpdates": []map[string]any{
		{"ProductKey": "iOSUpdate21G93", "HumanReadableName": "iOS 17.6.1", "Version": "17.6.1", "Build": "21G93", "RestartRequired": true},
		{"ProductKey": "iOSUpdate22A3354", "HumanReadableName": "iOS 18", "Version": "18.0", "Build": "22A3354"}}}
	ack := func(extra map[string]any) reply { return reply{applemdm.StatusAcknowledged, extra} }
	drain(t, dev, map[string]reply{applemdm.ReqDeviceInformation: ack(map[string]any{"QueryResponses": map[string]any{"OSVersion": "17.5.1"}}),
		applemdm.ReqAvailableOSUpdates: ack(updates)})
	p := e.posture(t, id)
	pa := p.Patch
	if pa == nil || len(pa.Pending) != 1 || pa.Pending[0].Name != "iOS 17.6.1" || pa.Pending[0].Severity != protocol.SeverityUnknown ||
		*pa.PendingSecurity != 1 || *pa.PendingTotal != 2 || !*pa.RebootRequired {
		t.Fatalf("patch %+v", pa)
	}
	first := pa.Pending[0].FirstSeen
	time.Sleep(10 * time.Millisecond)
	if err := e.mdm.Refresh(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	drain(t, dev, map[string]reply{applemdm.ReqAvailableOSUpdates: ack(updates)})
	if got := e.posture(t, id).Patch.Pending[0].FirstSeen; !got.Equal(first) {
		t.Fatalf("first seen moved from %v to %v", first, got)
	}
	if err := e.mdm.Refresh(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	drain(t, dev, map[string]reply{applemdm.ReqAvailableOSUpdates: {applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{
		{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": "The device is not supervised"}}}}})
	if pa := e.posture(t, id).Patch; pa.PendingSecurity != nil || !strings.Contains(pa.Unknown["pending_security"], "The device is not supervised") {
		t.Fatalf("after a refusal: %+v", pa)
	}
}

type reply struct {
	status string
	extra  map[string]any
}

// drain answers every queued command with its reply, refusing (Error)
// the kinds replies does not name.
func drain(t *testing.T, dev *appletest.Device, replies map[string]reply) {
	t.Helper()
	for c := dev.Next(t); c != nil; {
		r, ok := replies[c.RequestType]
		if !ok {
			r = reply{applemdm.StatusError, nil}
		}
		c = dev.Answer(t, c.UUID, r.status, r.extra)
	}
}
