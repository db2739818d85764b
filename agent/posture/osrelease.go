package posture

import (
	"strconv"
	"strings"
)

// parseOSRelease reads the os-release(5) format: KEY=value lines, values
// optionally quoted with shell escapes.
func parseOSRelease(text string) map[string]string {
	kv := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil && len(v) > 1 && v[0] == '"' {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		kv[k] = v
	}
	return kv
}
