package android

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// Props is one getprop dump, or why there is none. The sections built
// from it give the getprop failure as the reason for every value, rather
// than claiming each property was absent.
type Props struct {
	Values map[string]string
	Err    error
}

// NotReadableByApp is the reason for values Android keeps from apps and
// the host app does not report either.
const NotReadableByApp = "not readable by an app on Android"

// reasonValueLimit keeps a reason quoting a property's value well inside
// the protocol's limit on text length.
const reasonValueLimit = 64

func (p Props) get(name string) (string, bool) {
	if p.Err != nil {
		return "", false
	}
	v, ok := p.Values[name]
	return v, ok
}

// missing explains why name has no value. Properties SELinux keeps from
// apps are left out of the dump just as unset ones are, so the reason
// cannot say which.
func (p Props) missing(name string) string {
	if p.Err != nil {
		return "cannot read system properties: " + p.Err.Error()
	}
	return "getprop did not show " + name + " (unset, or not readable by an app)"
}

func unexpected(name, value string) string {
	if len(value) > reasonValueLimit {
		value = input.Clip(value, reasonValueLimit) + "..."
	}
	return fmt.Sprintf("%s is %q, which is not a value this agent knows", name, value)
}

// Disk reads the encryption of /data, the only volume Android encrypts
// for the user: ro.crypto.state says whether, ro.crypto.type how.
func Disk(p Props) *protocol.DiskEncryption {
	d := &protocol.DiskEncryption{State: protocol.DiskUnknown, Volume: "/data"}
	d.Source = GetpropSource
	switch state, ok := p.get("ro.crypto.state"); {
	case !ok:
		d.SetUnknown("state", p.missing("ro.crypto.state"))
		return d
	case state == "encrypted":
		d.State = protocol.DiskEncrypted
	case state == "unencrypted", state == "unsupported":
		// "unsupported": the device cannot encrypt, so /data is not.
		d.State = protocol.DiskUnencrypted
		return d
	default:
		d.SetUnknown("state", unexpected("ro.crypto.state", state))
		return d
	}
	switch typ, ok := p.get("ro.crypto.type"); {
	case !ok:
		d.SetUnknown("scheme", p.missing("ro.crypto.type"))
	case typ == "file":
		d.Scheme = "android-fbe"
	case typ == "block":
		d.Scheme = "android-fde"
	default:
		d.SetUnknown("scheme", unexpected("ro.crypto.type", typ))
	}
	// vold's default cipher applies when this is unset, but which default
	// depends on the Android release and vendor, so it is not guessed.
	if mode, ok := p.get("ro.crypto.volume.contents_mode"); ok && mode != "" && len(mode) <= reasonValueLimit {
		d.Cipher = mode
	} else {
		d.SetUnknown("cipher", p.missing("ro.crypto.volume.contents_mode"))
	}
	return d
}

// Patch reads the security patch level. What updates are pending and when
// the last was installed are known only to the system updater (and Google
// Play system updates), neither of which an app can ask.
func Patch(p Props) *protocol.PatchLevel {
	pl := &protocol.PatchLevel{}
	pl.Source = GetpropSource
	for _, f := range []string{"pending_security", "pending_total", "last_update", "reboot_required"} {
		pl.SetUnknown(f, NotReadableByApp)
	}
	switch v, ok := p.get("ro.build.version.security_patch"); {
	case !ok || v == "":
		pl.SetUnknown("security_patch", p.missing("ro.build.version.security_patch"))
	default:
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			pl.SetUnknown("security_patch", unexpected("ro.build.version.security_patch", v))
		} else {
			pl.SecurityPatch = v
		}
	}
	return pl
}

// Hygiene reads verified boot and the signs of a rooted device from the
// properties, adding su, the evidence SuEvidence found. Android has no
// firewall of its own, and whether Play Protect is on is not readable by
// an app.
func Hygiene(p Props, su []string) *protocol.Hygiene {
	h := &protocol.Hygiene{}
	h.Source = GetpropSource
	h.SetUnknown("firewall_on", NotReadableByApp)
	h.SetUnknown("antimalware_on", NotReadableByApp)

	var evidence []string
	add := func(e string) {
		for _, x := range evidence {
			if x == e {
				return
			}
		}
		evidence = append(evidence, e)
	}

	vbs, vbsOK := p.get("ro.boot.verifiedbootstate")
	switch {
	case !vbsOK:
		h.SetUnknown("secure_boot", p.missing("ro.boot.verifiedbootstate"))
	case vbs == "green":
		// Only green is verified against the manufacturer's key; yellow
		// trusts a key the user installed.
		h.SecureBoot = ptr(true)
	case vbs == "yellow", vbs == "red":
		h.SecureBoot = ptr(false)
	case vbs == "orange":
		h.SecureBoot = ptr(false)
		add("bootloader unlocked")
	default:
		h.SetUnknown("secure_boot", unexpected("ro.boot.verifiedbootstate", vbs))
	}
	if v, ok := p.get("ro.boot.flash.locked"); ok && v == "0" {
		add("bootloader unlocked")
	}
	debuggable, debugOK := p.get("ro.debuggable")
	if debuggable == "1" {
		add("ro.debuggable=1 (a debuggable build)")
	}
	tags, tagsOK := p.get("ro.build.tags")
	if strings.Contains(tags, "test-keys") {
		add("build signed with test-keys")
	}
	for _, e := range su {
		add(e)
	}
	if len(evidence) > maxEvidence {
		evidence = evidence[:maxEvidence]
	}
	switch {
	case len(evidence) > 0:
		h.RootedSuspected, h.RootedEvidence = ptr(true), evidence
	case !vbsOK && !debugOK && !tagsOK:
		// Without the properties only the su search ran; finding nothing
		// there is too little to call the device clean.
		reason := p.missing("ro.boot.verifiedbootstate, ro.debuggable and ro.build.tags")
		h.SetUnknown("rooted_suspected", reason)
	default:
		h.RootedSuspected = ptr(false)
	}
	return h
}

// maxEvidence matches the protocol's limit on list items.
const maxEvidence = 32

// suDirs are where rooting kits have put su (the list root detectors such
// as RootBeer search), searched besides $PATH because a rooted device's
// su need not be on an app's PATH.
var suDirs = []string{
	"/system/bin", "/system/xbin", "/system/sbin", "/sbin", "/vendor/bin",
	"/su/bin", "/system/su.d", "/system/bin/.ext", "/system/usr/we-need-root",
	"/data/local", "/data/local/bin", "/data/local/xbin", "/cache", "/data",
	"/dev", "/system/sd/xbin", "/system/bin/failsafe", "/debug_ramdisk",
}

// SuEvidence looks for an su binary in each directory of pathEnv (a
// $PATH value) and in the usual rooting locations, using stat (os.Stat)
// so tests need no file system. A stat error of any kind counts as not
// found: SELinux denies apps many of these directories, and a denial is
// no evidence either way.
func SuEvidence(pathEnv string, stat func(string) (fs.FileInfo, error)) []string {
	var found []string
	seen := map[string]bool{}
	dirs := append(strings.Split(pathEnv, ":"), suDirs...)
	for _, dir := range dirs {
		// A relative entry (or an empty one, meaning ".") depends on the
		// working directory, not the device.
		if !path.IsAbs(dir) || len(dir) > 256 {
			continue
		}
		file := path.Join(dir, "su")
		if seen[file] {
			continue
		}
		seen[file] = true
		fi, err := stat(file)
		if err != nil || fi == nil || fi.IsDir() {
			continue
		}
		found = append(found, "su at "+file)
		if len(found) == maxEvidence {
			break
		}
	}
	return found
}

// OSIdentity names the Android release and build. The kernel is left to
// the caller, which can read it without getprop.
func OSIdentity(p Props) protocol.OSIdentity {
	id := protocol.OSIdentity{Name: "Android", Source: GetpropSource}
	id.Version, _ = p.get("ro.build.version.release")
	id.Build, _ = p.get("ro.build.fingerprint")
	if id.Version == "" {
		id.Error = p.missing("ro.build.version.release")
	}
	return id
}

// Model is the device's marketing model ("Pixel 8"), or "" when getprop
// did not show it. protocol.OSIdentity has no field for it yet.
func Model(p Props) string {
	v, _ := p.get("ro.product.model")
	return v
}

// ErrNoProperties is the Props error when getprop succeeded but listed
// nothing, so that no section reads an empty dump as a device with every
// property unset.
var ErrNoProperties = errors.New("getprop listed no properties")

// PropsFromGetprop makes Props from the output and error of running
// getprop with no arguments.
func PropsFromGetprop(out []byte, err error) Props {
	if err != nil {
		return Props{Err: err}
	}
	values := ParseGetprop(string(out))
	if len(values) == 0 {
		return Props{Err: ErrNoProperties}
	}
	return Props{Values: values}
}

func ptr[T any](v T) *T { return &v }
