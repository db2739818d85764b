package compliance

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
)

// Bounds on application findings: one per unauthorized app up to
// maxAppFindings, the rest in one finding (subject appsMore), so that an
// allow-list that forgot a vendor cannot turn one report into thousands
// of rows.
const (
	maxAppFindings = 50
	appsMore       = "+more"
	maxSubject     = 64   // findings.subject
	maxMessage     = 1024 // findings.message
)

// applications checks the installed applications against the profile's
// application control. A report without the software section was not
// collected on that platform (no agent lists applications yet), so the
// control has nothing to evaluate there; a device that tried and could
// not tell says so in the section, which is an unknown finding.
func applications(ac *profiles.ApplicationControl, pos protocol.Posture) []Result {
	sw := pos.Software
	if ac == nil || sw == nil || !ac.AppliesTo(pos.OS.Platform) {
		return nil
	}
	info := controlInfo[CtlApplications]
	result := func(subject, msg string, unknown bool) Result {
		return Result{Control: CtlApplications, Subject: subject, CJIS: info.CJIS, Severity: info.Severity,
			Message: input.Clip(msg, maxMessage), Unknown: unknown, Grace: ac.Grace.D()}
	}
	var out []Result
	if r, ok := sw.Unknown["applications"]; ok {
		out = append(out, result("", "could not tell: "+r, true))
	} else if r, ok := sw.NotApplicable["applications"]; ok {
		out = append(out, result("", fmt.Sprintf("could not tell: the device says its application list is not applicable (%s), but the profile applies it to %s", r, pos.OS.Platform), true))
	}

	// One finding per bundle identifier, however many copies are
	// installed (a Mac lists each), ignoring case as Apple does.
	byID := map[string][]protocol.Application{}
	for _, a := range sw.Applications {
		if !ac.Authorized(a.ID) {
			k := strings.ToLower(a.ID)
			byID[k] = append(byID[k], a)
		}
	}
	ids := slices.Sorted(maps.Keys(byID))
	var rest []string
	for i, k := range ids {
		apps := byID[k]
		if i >= maxAppFindings {
			rest = append(rest, apps[0].ID)
			continue
		}
		what := "application " + describe(apps) + " is not on the profile's allow-list"
		if ac.Mode == profiles.AppsDeny {
			what = "denied application " + describe(apps) + " is installed"
		}
		out = append(out, result(subjectOf(k), what, false))
	}
	if len(rest) > 0 {
		verb := "are not on the profile's allow-list"
		if ac.Mode == profiles.AppsDeny {
			verb = "are denied and installed"
		}
		out = append(out, result(appsMore, fmt.Sprintf("%d more applications %s: %s", len(rest), verb, strings.Join(rest, ", ")), false))
	}
	return out
}

// describe names an app by its bundle identifier, with the name and
// versions the device gave.
func describe(apps []protocol.Application) string {
	var vs []string
	name := ""
	for _, a := range apps {
		if name == "" {
			name = a.Name
		}
		if a.Version != "" && !slices.Contains(vs, a.Version) {
			vs = append(vs, a.Version)
		}
	}
	s := apps[0].ID
	if d := strings.TrimSpace(name + " " + strings.Join(vs, ", ")); d != "" {
		s += " (" + d + ")"
	}
	return s
}

// subjectOf is the finding's subject for a bundle identifier (lower
// case): the identifier itself where it fits the column, else its start
// and a hash, so that two long identifiers stay two findings.
func subjectOf(id string) string {
	if len(id) <= maxSubject {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return input.Clip(id, maxSubject-17) + "~" + hex.EncodeToString(sum[:8])
}
