package macos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// XProtect's signature date (SI-3: the signatures update automatically).
// macOS has had two ways of delivering XProtect's data, and the agent
// reads the one that delivers the copy in use, best source first:
//
//   - macOS 15 Sequoia and later: the `xprotect` command (new in 15.0)
//     reports the version and install date of the bundle XProtect really
//     uses, /var/protected/xprotect/XProtect.bundle. Since 15.2 that copy
//     is updated over iCloud, not by Software Update, which still installs
//     (and InstallHistory.plist still records) the old bundle under
//     /Library/Apple; the two can differ for weeks, either way round
//     (Eclectic Light: "A simple guide to how XProtect installs and
//     updates in Sequoia", 2024-10-10; "XProtect has changed again in
//     macOS Sequoia 15.2", 2024-12; "Is your XProtect stuck on 5324?",
//     2025-12-29). On these systems no other source is trusted: when the
//     command fails, the date is left out.
//   - macOS 10.15 to 14 (and, under /System, older ones): Software Update
//     installs XProtectPlistConfigData packages, each recorded in
//     InstallHistory.plist with its date and version. The date of the
//     entry whose version is the installed bundle's
//     (CFBundleShortVersionString of XProtect.bundle/Contents/Info.plist)
//     is used; where the history has no such entry (a fresh install whose
//     XProtect came with the OS, or a pruned history), the Info.plist's
//     modification time stands in. A package keeps the file dates Apple
//     built it with, so that time is no later than the install: the
//     strict side.
//
// XProtectPayloads entries in the same history are XProtect Remediator
// (XProtect.app), a separate scanner updated about monthly: they say
// nothing about the signatures' age and are not read.
const (
	// XProtectTool is the xprotect command, present from macOS 15.
	XProtectTool = "/usr/bin/xprotect"
	// CmdXProtectVersion asks it for the installed version as JSON;
	// CmdXProtectVersionText is the plain form, run where --json fails.
	CmdXProtectVersion     = "xprotect version --json"
	CmdXProtectVersionText = "xprotect version"
	// XProtectConfigData is the displayName of XProtect's data updates in
	// InstallHistory.plist (their packages are
	// com.apple.pkg.XProtectPlistConfigData_10_15.<build>).
	XProtectConfigData = "XProtectPlistConfigData"
)

// xprotectFirst is when XProtect first shipped (Mac OS X 10.6, August
// 2009): a signature date before it is not one.
var xprotectFirst = time.Date(2009, 8, 28, 0, 0, 0, 0, time.UTC)

// maxClockAhead is how far ahead of the agent's clock a signature date
// may be (time zones, a clock set a little wrong) before it is refused:
// a date in the future would read as fresh for ever.
const maxClockAhead = 24 * time.Hour

// XProtectData is what the platform glue read for the signature date.
type XProtectData struct {
	// Tool is the run of `xprotect version --json`; a zero Output (no
	// Command) where XProtectTool does not exist, that is before macOS 15.
	// ToolText is the run of plain `xprotect version`, made only when that
	// one exits with an error (a release without --json).
	Tool, ToolText Output
	// Info is XProtect.bundle/Contents/Info.plist as read (its Err when
	// unreadable), and InfoModTime that file's modification time.
	Info        Output
	InfoModTime time.Time
	// History is InstallHistory.plist as read.
	History Output
	// Now is the agent's clock when these were read.
	Now time.Time
}

// Signatures picks the signature date from the best source d has: the
// date, the source it came from, and, when there is no date, why.
func (d XProtectData) Signatures() (at *time.Time, source, why string) {
	if d.Tool.Command != "" {
		// macOS 15+: the tool is the only source about the copy in use.
		at, why := d.fromTool(d.Tool)
		if at == nil && d.Tool.Err != nil && d.ToolText.Command != "" {
			var why2 string
			if at, why2 = d.fromTool(d.ToolText); at == nil {
				why = clip(why + "; " + why2)
			}
		}
		if at == nil {
			return nil, "", why
		}
		return at, "xprotect version", ""
	}

	version, infoWhy := "", ""
	if r := d.Info.failure(); r != "" {
		infoWhy = r
	} else if v, err := ParseBundleVersion(d.Info.Stdout); err != nil {
		infoWhy = clip(d.Info.Command + ": " + err.Error())
	} else {
		version = v
	}
	var histWhy string
	if r := d.History.failure(); r != "" {
		histWhy = r
	} else if t, err := ParseXProtectHistory(d.History.Stdout, version); err != nil {
		histWhy = clip(d.History.Command + ": " + err.Error())
	} else if r := d.sane(t); r != "" {
		histWhy = clip(d.History.Command + ": " + r)
	} else {
		return &t, InstallHistory + " " + XProtectConfigData, ""
	}
	if version != "" && !d.InfoModTime.IsZero() {
		t := d.InfoModTime.UTC()
		if r := d.sane(t); r == "" {
			return &t, "XProtect.bundle Info.plist modification time", ""
		}
	}
	if infoWhy != "" {
		return nil, "", clip(histWhy + "; " + infoWhy)
	}
	return nil, "", histWhy
}

// fromTool reads one run of the xprotect command.
func (d XProtectData) fromTool(o Output) (*time.Time, string) {
	if r := o.failure(); r != "" {
		return nil, r
	}
	_, t, err := ParseXProtectVersion(o.Stdout)
	if err != nil {
		return nil, clip(o.Command + ": " + err.Error())
	}
	if r := d.sane(t); r != "" {
		return nil, clip(o.Command + ": " + r)
	}
	return &t, ""
}

// sane refuses dates that cannot be a signature install.
func (d XProtectData) sane(t time.Time) string {
	switch {
	case t.Before(xprotectFirst):
		return "install date " + t.UTC().Format(time.RFC3339) + " is before XProtect existed"
	case !d.Now.IsZero() && t.After(d.Now.Add(maxClockAhead)):
		return "install date " + t.UTC().Format(time.RFC3339) + " is in the future"
	}
	return ""
}

// ParseXProtectVersion reads `xprotect version --json` (macOS 15+):
//
//	{"xprotect_bundle_version": "5325", "xprotect_bundle_install_date": "2025-12-17T09:41:07Z"}
//
// The key names and the ISO 8601 date are those a public macOS posture
// tool reads from this command and records in its test fixture
// (SecurityParsers.xprotect, fixture xprotect-version.json); it was not
// checked on a Mac here. Without --json the command prints "Version:" and
// "Installed:" lines, as a public collector script parses them
// (system-health-guardian.sh: "Version: <n>", "Installed: YYYY-MM-DD...");
// that form is read too, in case a macOS release ignores --json. Any
// other output is an error, never a guessed date.
func ParseXProtectVersion(out []byte) (version string, at time.Time, err error) {
	b := bytes.TrimSpace(out)
	if len(b) > 0 && b[0] == '{' {
		return parseXProtectJSON(b)
	}
	return parseXProtectText(string(b))
}

func parseXProtectJSON(b []byte) (string, time.Time, error) {
	var v struct {
		Version json.RawMessage `json:"xprotect_bundle_version"`
		Date    *string         `json:"xprotect_bundle_install_date"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		return "", time.Time{}, fmt.Errorf("not a version object: %w", err)
	}
	if dec.More() {
		return "", time.Time{}, errors.New("more than one JSON document")
	}
	if v.Date == nil {
		return "", time.Time{}, errors.New("no xprotect_bundle_install_date")
	}
	at, err := time.Parse(time.RFC3339, *v.Date)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("xprotect_bundle_install_date %.40q is not an ISO 8601 time", *v.Date)
	}
	var ver string
	var n json.Number
	if json.Unmarshal(v.Version, &ver) != nil && json.Unmarshal(v.Version, &n) == nil {
		ver = n.String()
	}
	if !xpVersion.MatchString(ver) {
		return "", time.Time{}, errors.New("no xprotect_bundle_version")
	}
	return ver, at.UTC(), nil
}

var (
	xpVersion       = regexp.MustCompile(`^[0-9]{1,9}$`)
	xpVersionLine   = regexp.MustCompile(`(?m)^\s*(?:XProtect\s+)?[Vv]ersion:\s*([0-9]{1,9})\s*$`)
	xpInstalledLine = regexp.MustCompile(`(?m)^\s*[Ii]nstalled(?:\s+[Dd]ate)?:\s*(\S.*?)\s*$`)
)

// Layouts the text form's date is tried in: ISO 8601, then what
// NSDate's description prints, then a bare date (read as UTC midnight:
// a day's precision is all a signature age needs).
var xpLayouts = []string{time.RFC3339, "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05 +0000", "2006-01-02"}

func parseXProtectText(s string) (string, time.Time, error) {
	vm := xpVersionLine.FindStringSubmatch(s)
	dm := xpInstalledLine.FindStringSubmatch(s)
	if vm == nil || dm == nil {
		return "", time.Time{}, errors.New("neither JSON nor \"Version:\" and \"Installed:\" lines")
	}
	for _, l := range xpLayouts {
		if at, err := time.Parse(l, dm[1]); err == nil {
			return vm[1], at.UTC(), nil
		}
	}
	return "", time.Time{}, fmt.Errorf("installed date %.40q is in no known layout", dm[1])
}

// ParseBundleVersion reads CFBundleShortVersionString from a bundle's
// Info.plist ("2177" for XProtect).
func ParseBundleVersion(b []byte) (string, error) {
	v, err := DecodePlist(b)
	if err != nil {
		return "", err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("Info.plist is %T, not a dictionary", v)
	}
	s, _ := d["CFBundleShortVersionString"].(string)
	if s = strings.TrimSpace(s); s == "" {
		return "", errors.New("no CFBundleShortVersionString")
	}
	return s, nil
}

// ParseXProtectHistory returns when Software Update last installed
// XProtect's data, from InstallHistory.plist. With version (the installed
// bundle's) it is the newest install of that version, so that a bundle
// replaced by an older copy is not dated by a newer install; with "" the
// newest XProtectPlistConfigData install.
func ParseXProtectHistory(b []byte, version string) (time.Time, error) {
	installs, err := appleInstalls(b)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	seen := false
	for _, e := range installs {
		d, at := e.fields, e.at
		if name, _ := d["displayName"].(string); name != XProtectConfigData {
			continue
		}
		seen = true
		if dv, _ := d["displayVersion"].(string); version != "" && strings.TrimSpace(dv) != version {
			continue
		}
		if at.After(last) {
			last = at
		}
	}
	switch {
	case last.IsZero() && seen:
		return last, fmt.Errorf("no %s install of version %s in the install history", XProtectConfigData, version)
	case last.IsZero():
		return last, fmt.Errorf("no %s install in the install history", XProtectConfigData)
	}
	return last.UTC(), nil
}
