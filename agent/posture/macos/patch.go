package macos

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Commands and files the patch section reads.
const (
	CmdSwVers         = "sw_vers"
	CmdSoftwareUpdate = "softwareupdate -l"
	// InstallHistory is where macOS records every installation.
	InstallHistory = "/Library/Receipts/InstallHistory.plist"
)

// SwVers is what `sw_vers` prints.
type SwVers struct {
	ProductName    string // "macOS"; "Mac OS X" before 10.12
	ProductVersion string // "14.2.1"
	// ProductVersionExtra is the Rapid Security Response suffix, "(a)".
	ProductVersionExtra string
	BuildVersion        string // "23C71"
}

// ParseSwVers reads `sw_vers`.
func ParseSwVers(out string) (SwVers, error) {
	var v SwVers
	for _, line := range strings.Split(out, "\n") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(k) {
		case "ProductName":
			v.ProductName = val
		case "ProductVersion":
			v.ProductVersion = val
		case "ProductVersionExtra":
			v.ProductVersionExtra = val
		case "BuildVersion":
			v.BuildVersion = val
		}
	}
	if v.ProductName == "" || v.ProductVersion == "" {
		return v, errors.New("no ProductName or ProductVersion")
	}
	return v, nil
}

// Identity fills an OS identity from a run of sw_vers (and uname -r for
// the kernel, which may be a zero Output).
func Identity(swVers, uname Output) protocol.OSIdentity {
	id := protocol.OSIdentity{Source: CmdSwVers}
	if r := swVers.failure(); r != "" {
		id.Error = r
		return id
	}
	v, err := ParseSwVers(string(swVers.Stdout))
	if err != nil {
		id.Error = unrecognised(swVers.Command, swVers.Stdout)
		return id
	}
	id.Name, id.Version, id.Build = v.ProductName, v.ProductVersion, v.BuildVersion
	if v.ProductVersionExtra != "" {
		id.Version += " " + v.ProductVersionExtra
	}
	if uname.Err == nil {
		id.Kernel = clip(strings.TrimSpace(string(uname.Stdout)))
	}
	return id
}

// Update is one item `softwareupdate -l` offers.
type Update struct {
	Label, Title, Version string
	Recommended           bool
	// Action is "restart" or "shut down" when installing needs one.
	Action string
}

// NeedsRestart says whether installing the update reboots the Mac;
// firmware updates ask for a shut down, which is a reboot too.
func (u Update) NeedsRestart() bool {
	return u.Action == "restart" || u.Action == "shut down"
}

var osName = regexp.MustCompile(`^(macOS|Mac OS X|OS X)\b`)

// SecurityRelevant is the rule for PendingSecurity. softwareupdate does
// not classify updates, so:
//   - anything whose label or title says "Security" (Rapid Security
//     Responses, Background Security Improvements, Security Updates for
//     older releases) counts;
//   - so does every macOS update that restarts the Mac: each one Apple
//     ships carries security fixes (see its security release notes), and
//     a restart-less item named macOS is not the OS itself;
//   - application updates (Safari, Xcode tools, ...) do not, even though
//     some carry fixes, since the agent cannot tell which.
func (u Update) SecurityRelevant() bool {
	if strings.Contains(strings.ToLower(u.Label+" "+u.Title), "security") {
		return true
	}
	return u.NeedsRestart() && (osName.MatchString(u.Title) || osName.MatchString(u.Label))
}

var (
	suNone = regexp.MustCompile(`No new software available`)
	suList = regexp.MustCompile(`Software Update found the following`)
	// Since 10.15: "* Label: macOS Sonoma 14.2.1-23C71".
	suLabel    = regexp.MustCompile(`^\s*\* Label: (.+?)\s*$`)
	suOldLabel = regexp.MustCompile(`^\s*\* (\S.*?)\s*$`)
	suOldAttrs = regexp.MustCompile(`\[(recommended|restart|shut down)\]`)
	suFailure  = regexp.MustCompile(`(?i)(cannot|can't|could not|unable to|failed to) (connect|contact|reach|load|find)|error`)
)

// ParseSoftwareUpdate reads `softwareupdate -l` (stdout and stderr
// together: the "No new software available." line goes to stderr). An
// output that says neither "none" nor "found" is an error, not zero.
func ParseSoftwareUpdate(out string) ([]Update, error) {
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	var ups []Update
	for i := 0; i < len(lines); i++ {
		m := suLabel.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		u := Update{Label: m[1]}
		if i+1 < len(lines) && strings.Contains(lines[i+1], "Title:") {
			i++
			parseUpdateAttrs(&u, lines[i])
		}
		ups = append(ups, u)
	}
	if len(ups) == 0 && suList.MatchString(out) {
		ups = parseOldUpdates(lines)
	}
	switch {
	case len(ups) > 0:
		return ups, nil
	case suNone.MatchString(out) && !suList.MatchString(out):
		return nil, nil
	case suList.MatchString(out):
		return nil, errors.New("update list announced but no items could be read")
	}
	if m := suFailure.FindString(out); m != "" {
		return nil, fmt.Errorf("softwareupdate reported a failure: %s", firstMatchingLine(out, m))
	}
	return nil, errors.New("neither an update list nor \"No new software available\"")
}

// parseOldUpdates reads the list format before 10.15: "   * name-version"
// then a tab-indented description ending in [recommended] [restart].
func parseOldUpdates(lines []string) []Update {
	var ups []Update
	for i := 0; i < len(lines); i++ {
		m := suOldLabel.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		u := Update{Label: m[1]}
		if i+1 < len(lines) && suOldLabel.FindStringSubmatch(lines[i+1]) == nil {
			i++
			desc := strings.TrimSpace(lines[i])
			for _, a := range suOldAttrs.FindAllStringSubmatch(desc, -1) {
				if a[1] == "recommended" {
					u.Recommended = true
				} else {
					u.Action = a[1]
				}
			}
			u.Title = strings.TrimSpace(suOldAttrs.ReplaceAllString(desc, ""))
		}
		ups = append(ups, u)
	}
	return ups
}

var suAttr = regexp.MustCompile(`(?:^|,\s*)(Title|Version|Size|Recommended|Action):\s*`)

// parseUpdateAttrs reads "Title: macOS Sonoma 14.2.1, Version: 14.2.1,
// Size: 1234KiB, Recommended: YES, Action: restart,". Titles may contain
// commas, so values are cut only at the next known ", Name: ".
func parseUpdateAttrs(u *Update, line string) {
	s := strings.TrimSpace(line)
	idx := suAttr.FindAllStringSubmatchIndex(s, -1)
	for k, m := range idx {
		end := len(s)
		if k+1 < len(idx) {
			end = idx[k+1][0]
		}
		v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s[m[1]:end]), ","))
		switch s[m[2]:m[3]] {
		case "Title":
			u.Title = v
		case "Version":
			u.Version = v
		case "Recommended":
			u.Recommended = strings.EqualFold(v, "YES")
		case "Action":
			u.Action = strings.ToLower(v)
		}
	}
}

func firstMatchingLine(out, m string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, m) {
			return strings.TrimSpace(l)
		}
	}
	return m
}

// appleInstallers are the processes that record Apple's own software
// updates in InstallHistory.plist; entries by "Installer" are packages
// anyone can install and say nothing about patching.
var appleInstallers = map[string]bool{
	"softwareupdated": true,
	"Software Update": true,
	"macOS Installer": true,
	"OS X Installer":  true,
}

// installEntry is one install InstallHistory.plist records by Apple's
// own installers, with its date.
type installEntry struct {
	at     time.Time
	fields map[string]any
}

// appleInstalls decodes InstallHistory.plist into the installs Apple's
// installers made; entries without a date or by other processes are left
// out.
func appleInstalls(b []byte) ([]installEntry, error) {
	v, err := DecodePlist(b)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("install history is %T, not an array", v)
	}
	var out []installEntry
	for _, e := range list {
		d, ok := e.(map[string]any)
		if !ok {
			continue
		}
		proc, _ := d["processName"].(string)
		if at, ok := d["date"].(time.Time); ok && appleInstallers[proc] {
			out = append(out, installEntry{at: at, fields: d})
		}
	}
	return out, nil
}

// ParseInstallHistory reads InstallHistory.plist and returns when an
// Apple software update was last installed.
func ParseInstallHistory(b []byte) (time.Time, error) {
	installs, err := appleInstalls(b)
	if err != nil {
		return time.Time{}, err
	}
	var last time.Time
	for _, e := range installs {
		at := e.at
		if at.After(last) {
			last = at
		}
	}
	if last.IsZero() {
		return last, errors.New("no Apple software update in the install history")
	}
	return last.UTC(), nil
}

// Patch builds the patch section. history is the content of
// InstallHistory.plist (its Err when unreadable); now is when
// softwareupdate ran.
func Patch(swVers, updates, history Output, now time.Time) *protocol.PatchLevel {
	p := &protocol.PatchLevel{}
	p.Source = "sw_vers, softwareupdate -l, " + InstallHistory

	// macOS has no separate patch level: the version, with the Rapid
	// Security Response suffix, names the security content installed.
	if r := swVers.failure(); r != "" {
		p.SetUnknown("security_patch", r)
	} else if v, err := ParseSwVers(string(swVers.Stdout)); err != nil {
		p.SetUnknown("security_patch", unrecognised(swVers.Command, swVers.Stdout))
	} else {
		p.SecurityPatch = strings.TrimSpace(v.ProductVersion + " " + v.ProductVersionExtra)
	}

	if r := updates.failure(); r != "" {
		for _, f := range []string{"pending_security", "pending_total", "reboot_required"} {
			p.SetUnknown(f, r)
		}
	} else if ups, err := ParseSoftwareUpdate(updates.combined()); err != nil {
		r := clip(updates.Command + ": " + err.Error())
		for _, f := range []string{"pending_security", "pending_total", "reboot_required"} {
			p.SetUnknown(f, r)
		}
	} else {
		sec, reboot := 0, false
		for _, u := range ups {
			if u.SecurityRelevant() {
				sec++
			}
			reboot = reboot || u.NeedsRestart()
		}
		p.PendingTotal, p.PendingSecurity = ptr(len(ups)), ptr(sec)
		// Only "an update waiting would restart" is visible here; a
		// restart owed for one already installed is not.
		p.RebootRequired = ptr(reboot)
		p.CheckedAt = ptr(now.UTC())
	}

	if r := history.failure(); r != "" {
		p.SetUnknown("last_update", r)
	} else if at, err := ParseInstallHistory(history.Stdout); err != nil {
		p.SetUnknown("last_update", clip(history.Command+": "+err.Error()))
	} else {
		p.LastUpdate = &at
	}
	return p
}
