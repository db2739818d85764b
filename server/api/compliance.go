package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// Compliance is the compliance service as the API uses it.
type Compliance interface {
	Standing
	ProfileChanges
	BluetoothDecisions
}

// Standing answers where devices stand and whether one may reach CJI.
type Standing interface {
	State(ctx context.Context, deviceID string) (compliance.State, error)
	States(ctx context.Context, ds []store.Device) (map[string]compliance.State, error)
	Access(ctx context.Context, deviceID string) (compliance.Decision, error)
	Summary(ctx context.Context) (compliance.Summary, error)
}

// ProfileChanges stores a profile, and evaluates devices again after a
// profile or a group changed.
type ProfileChanges interface {
	PutProfile(ctx context.Context, name string, doc []byte, actor, source string) (*profiles.Profile, error)
	Reevaluate(ctx context.Context, ids ...string)
}

// ComplianceReader reads what compliance stores. Groups are changed in
// the transaction of their audit entry (Transactor).
type ComplianceReader interface {
	ProfileReader
	FindingReader
	BluetoothReader
	Transactor
}

// ProfileReader reads the profile documents and the groups that follow
// them.
type ProfileReader interface {
	ListProfileDocs(ctx context.Context) ([]store.ProfileDoc, error)
	GetProfileDoc(ctx context.Context, name string) (*store.ProfileDoc, error)
	ListGroups(ctx context.Context) ([]store.Group, error)
	GroupProfile(ctx context.Context, group string) (string, error)
}

// FindingReader reads a device's findings, resolved ones included.
type FindingReader interface {
	FindingHistory(ctx context.Context, deviceID string, limit int) ([]store.Finding, error)
}

// Transactor runs a change and its audit entry in one transaction (AU-5).
type Transactor interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// WithCompliance serves compliance, profiles, groups and Bluetooth routes.
func WithCompliance(c Compliance, r ComplianceReader) Option {
	return func(a *API) { a.compliance, a.complianceReader = c, r }
}

// withCompliance fills a device's compliance fields.
func (a *API) withCompliance(ctx context.Context, d *Device) error {
	if a.compliance == nil {
		return nil
	}
	st, err := a.compliance.State(ctx, d.ID)
	if err != nil {
		return err
	}
	setCompliance(d, st)
	return nil
}

func setCompliance(d *Device, st compliance.State) {
	d.Compliance = st.State
	ok := st.State == compliance.StateCompliant || st.State == compliance.StateNoncompliant
	if st.State != compliance.StateUnknown {
		d.Compliant = &ok
	}
	if st.Deadline != nil {
		s := timefmt.JSON(*st.Deadline)
		d.Deadline = &s
	}
	d.Reasons = st.Reasons
	d.Findings = make([]any, 0, len(st.Findings))
	for _, f := range st.Findings {
		d.Findings = append(d.Findings, findingJSON(f))
	}
}

func findingJSON(f store.Finding) map[string]any {
	return map[string]any{"control": f.Control, "subject": f.Subject, "cjis": f.CJIS, "severity": f.Severity,
		"message": f.Message, "unknown": f.Unknown, "first_seen": timefmt.JSON(f.FirstSeen),
		"last_seen": timefmt.JSON(f.LastSeen), "deadline": timefmt.JSON(f.Deadline()), "action": f.Action}
}

func (a *API) deviceAccess(w http.ResponseWriter, r *http.Request) {
	d, err := a.compliance.Access(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, d)
}

func (a *API) complianceSummary(w http.ResponseWriter, r *http.Request) {
	s, err := a.compliance.Summary(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, s)
}

func (a *API) listProfiles(w http.ResponseWriter, r *http.Request) {
	ps, err := a.complianceReader.ListProfileDocs(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, map[string]any{"name": p.Name, "updated_at": timefmt.JSON(p.UpdatedAt), "updated_by": p.UpdatedBy})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"profiles": out})
}

// mobileConfig renders a profile for Apple devices, to install through
// the Apple MDM channel or by hand.
func (a *API) mobileConfig(w http.ResponseWriter, r *http.Request) {
	doc, err := a.complianceReader.GetProfileDoc(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	p, err := profiles.ParseStored([]byte(doc.Document))
	if err != nil {
		a.fail(w, err)
		return
	}
	b, err := apple.MobileConfig(p, apple.Options{Organization: "Cordon"})
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="`+p.Name+`.mobileconfig"`)
	w.Write(b)
}

func (a *API) findingHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := a.store.GetDevice(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	fs, err := a.complianceReader.FindingHistory(r.Context(), id, 500)
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		m := findingJSON(f)
		m["resolved_at"] = nil
		if f.ResolvedAt != nil {
			m["resolved_at"] = timefmt.JSON(*f.ResolvedAt)
		}
		out = append(out, m)
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"findings": out})
}

// profileSchema is the profile document's JSON Schema, for editors.
func (a *API) profileSchema(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Write(profiles.Schema())
}

// getProfile answers the document as IT wrote it (YAML or JSON).
func (a *API) getProfile(w http.ResponseWriter, r *http.Request) {
	p, err := a.complianceReader.GetProfileDoc(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	io.WriteString(w, p.Document)
}

func (a *API) putProfile(w http.ResponseWriter, r *http.Request) {
	doc, err := io.ReadAll(http.MaxBytesReader(w, r.Body, profiles.MaxDocument))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, "profile document too large or unreadable")
		return
	}
	p := principal(r)
	if _, err := a.compliance.PutProfile(r.Context(), r.PathValue("name"), doc, p.Actor, httpjson.RemoteHost(r)); err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "status": "in force"})
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := a.complianceReader.ListGroups(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, map[string]string{"name": g.Name, "profile": g.Profile})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"groups": out})
}

func (a *API) putGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Profile *string `json:"profile"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	name := r.PathValue("name")
	// The route exists to set the profile: without it nothing changes.
	if err := input.First(input.Name("name", name), required("profile", body.Profile)); err != nil {
		a.fail(w, err)
		return
	}
	if err := input.Name("profile", *body.Profile); err != nil {
		a.fail(w, err)
		return
	}
	if _, err := a.complianceReader.GetProfileDoc(r.Context(), *body.Profile); err != nil {
		a.fail(w, named(err, "profile", *body.Profile))
		return
	}
	if err := a.audited(r, "group.updated", "group:"+name, map[string]string{"profile": *body.Profile}, func(tx *store.Store) error {
		return tx.SaveGroup(r.Context(), &store.Group{Name: name, Profile: *body.Profile})
	}); err != nil {
		a.fail(w, err)
		return
	}
	a.compliance.Reevaluate(r.Context())
	httpjson.Write(w, http.StatusOK, map[string]string{"name": name, "profile": *body.Profile})
}

func (a *API) putDeviceGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Group *string `json:"group"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	// {} used to move the device out of its group, and so out of its
	// profile: the field this route sets is required.
	if err := required("group", body.Group); err != nil {
		a.fail(w, err)
		return
	}
	// An explicit "" puts the device back in the default group.
	group := *body.Group
	if group != "" {
		if err := input.Name("group", group); err != nil {
			a.fail(w, err)
			return
		}
	}
	if _, err := a.complianceReader.GroupProfile(r.Context(), group); err != nil {
		a.fail(w, named(err, "group", group))
		return
	}
	id := r.PathValue("id")
	if err := a.audited(r, compliance.ActionGroupChanged, "device:"+id, map[string]string{"group": group}, func(tx *store.Store) error {
		return tx.SetDeviceGroup(r.Context(), id, group)
	}); err != nil {
		a.fail(w, err)
		return
	}
	a.compliance.Reevaluate(r.Context(), id)
	httpjson.Write(w, http.StatusOK, map[string]string{"device_id": id, "group": group})
}

// required refuses a PUT or PATCH body that omits the field the route
// exists to set.
func required[T any](field string, v *T) error {
	if v == nil {
		return input.Errorf(field, "is required: this route exists to set it")
	}
	return nil
}

// audited makes change and records its entry in one transaction: both
// commit, or neither does and the caller is refused (AU-5).
func (a *API) audited(r *http.Request, action, target string, details map[string]string, change func(tx *store.Store) error) error {
	p := principal(r)
	return a.complianceReader.InTx(r.Context(), func(tx *store.Store) error {
		if err := change(tx); err != nil {
			return err
		}
		return a.audit.RecordTx(r.Context(), tx, audit.Entry{Actor: p.Actor, Source: httpjson.RemoteHost(r), Action: action,
			Target: target, Outcome: audit.Success, Details: details})
	})
}

// named turns "not found" for a name the body gives into the caller's
// mistake (400, the field named); any other error stays what it is, so a
// database that is down is not answered as bad input.
func named(err error, field, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		return input.Errorf(field, "no %s named %q", field, name)
	}
	return err
}
