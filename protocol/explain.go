package protocol

import (
	"reflect"
	"strings"
)

// Unexplained lists the values of p's sections that are absent without a
// reason in the section's Unknown or NotApplicable map: a collector must
// never leave the server to guess whether "missing" means "off". A few
// values are optional by design (antimalware_signatures_at: only some
// platforms know it) and are not listed.
func (p Posture) Unexplained() []string {
	var out []string
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		sec := v.Field(i)
		if sec.Kind() != reflect.Pointer || sec.IsNil() {
			continue
		}
		name := jsonName(v.Type().Field(i))
		s := sec.Elem()
		pv := s.FieldByName("Provenance")
		if !pv.IsValid() {
			continue // a section the agent itself fills (identity)
		}
		prov, ok := pv.Interface().(Provenance)
		if !ok {
			continue
		}
		for j := range s.NumField() {
			f, ft := s.Field(j), s.Type().Field(j)
			if ft.Anonymous || f.Kind() != reflect.Pointer || !f.IsNil() {
				continue
			}
			field := jsonName(ft)
			if !prov.Explained(field) && !impliedByAnother(name, field, s, prov) && !optional[name+"."+field] {
				out = append(out, name+"."+field)
			}
		}
		if st := s.FieldByName("State"); st.IsValid() && st.String() == "unknown" && prov.Unknown["state"] == "" {
			out = append(out, name+".state")
		}
	}
	return out
}

// optional are values a platform may simply not have, whose absence the
// server reads as "not reported" (only "running" is checked without
// signature dates).
var optional = map[string]bool{"hygiene.antimalware_signatures_at": true}

// impliedByAnother covers values that only exist when another does: idle
// since only while idle, powered only with an adapter, timeout only when
// lock policy is known at all.
func impliedByAnother(section, field string, s reflect.Value, prov Provenance) bool {
	switch section + "." + field {
	case "lock.idle_since":
		secs := s.FieldByName("IdleSeconds")
		return prov.Unknown["idle_seconds"] != "" || (!secs.IsNil() && secs.Elem().Int() == 0)
	case "lock.idle_seconds":
		return false
	case "bluetooth.powered":
		pr := s.FieldByName("Present")
		return prov.Unknown["present"] != "" || (!pr.IsNil() && !pr.Elem().Bool())
	case "patch.pending_total", "patch.checked_at":
		return prov.Unknown["pending_security"] != ""
	}
	return false
}

func jsonName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return n
}
