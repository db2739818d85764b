package profiles

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSchemaDescribesEveryField: the published schema and the Go types
// name the same fields, so neither can drift from the other.
func TestSchemaDescribesEveryField(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	var check func(path string, typ reflect.Type, node map[string]any)
	check = func(path string, typ reflect.Type, node map[string]any) {
		if ref, ok := node["$ref"].(string); ok {
			node = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		props, _ := node["properties"].(map[string]any)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		seen := map[string]bool{}
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				// The embedded struct's fields are this node's.
				for j := range f.Type.NumField() {
					n, _, _ := strings.Cut(f.Type.Field(j).Tag.Get("yaml"), ",")
					seen[n] = true
					if _, ok := props[n]; !ok {
						t.Errorf("schema lacks %s.%s", path, n)
					}
				}
				continue
			}
			seen[name] = true
			sub, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("schema lacks %s.%s", path, name)
				continue
			}
			check(path+"."+name, f.Type, sub)
		}
		for name := range props {
			if !seen[name] {
				t.Errorf("schema has %s.%s, which the profile type does not", path, name)
			}
		}
	}
	check("profile", reflect.TypeOf(Profile{}), schema)
}
