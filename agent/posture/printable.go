package posture

import (
	"reflect"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// printable holds every text of a report section (a pointer) to the server's text rule
// (valid UTF-8, no control characters but newline and tab, at most
// protocol.MaxPostureText bytes) before it leaves the collector. The
// texts come from the system and from its neighbours: a Bluetooth device
// in range names itself, and one named with a NUL would otherwise get
// every report of the device refused, blinding the server to its lock
// state. It walks the report rather than listing fields, so a section
// added later is covered too.
//
// Sections are cleaned where they are read, before they are cached and
// shared between reports, so no report's assembly writes to them.
func printable[T any](p *T) *T {
	if p != nil {
		clean(reflect.ValueOf(p).Elem())
	}
	return p
}

// printableAny is printable for a section behind an interface.
func printableAny(p any) any {
	clean(reflect.ValueOf(p))
	return p
}

func clean(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() {
			v.SetString(clip(input.Printable(v.String())))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			clean(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				clean(v.Field(i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			clean(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() || v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(reflect.ValueOf(clip(input.Printable(it.Key().String()))), reflect.ValueOf(clip(input.Printable(it.Value().String()))))
		}
		v.Set(out)
	}
}

// clip cuts s to protocol.MaxPostureText bytes on a rune boundary.
func clip(s string) string { return input.Clip(s, protocol.MaxPostureText) }
