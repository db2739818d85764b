package packaging

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
)

// copyright is /usr/share/doc/NAME/copyright, in Debian's machine-readable
// format (lintian wants one in every package).
func copyright(name string) []byte {
	return []byte(fmt.Sprintf(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: %s
Upstream-Contact: %s
Source: %s

Files: *
Copyright: 2025-%d The Cordon MDM authors
License: %s
 Cordon MDM for criminal-justice agencies. Use, copying and distribution
 are governed by the agreement under which the agency received Cordon; see
 %s for the project.
`, name, maintainer, homepage, mtime().Year(), license, homepage))
}

// changelog is /usr/share/doc/NAME/changelog.gz: one entry for this build
// in Debian's changelog format (the package is native: its version has no
// Debian revision), compressed as lintian wants (gzip -9, no name, no time).
func changelog(name, version string) []byte {
	text := fmt.Sprintf("%s (%s) stable; urgency=medium\n\n  * Cordon %s; the changes are in the project's history:\n    %s\n\n -- %s  %s\n",
		name, version, version, homepage, maintainer, mtime().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return gz([]byte(text))
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// manPage is a section-1 man page (compressed) made from a binary's
// usage text, the same text `NAME help` prints (internal/helptext).
func manPage(name, version, summary, usage string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 \"%s\" \"%s %s\" \"Cordon MDM\"\n", strings.ToUpper(name), mtime().Format("2006-01-02"), name, version)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", name, roff(summary))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n.I COMMAND\n.RI [ flags ]\n", name)
	b.WriteString(".SH COMMANDS\n.nf\n")
	_, body, _ := strings.Cut(usage, "\n") // the first line is the synopsis
	for _, l := range strings.Split(strings.Trim(body, "\n"), "\n") {
		b.WriteString(roff(l) + "\n")
	}
	b.WriteString(".fi\n")
	fmt.Fprintf(&b, ".PP\nEach command lists its flags with\n.BR \"%s COMMAND \\-h\" .\n", name)
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, ".SH %s\n%s\n", extra[i], extra[i+1])
	}
	fmt.Fprintf(&b, ".SH SEE ALSO\n%s\n", roff(homepage))
	return gz([]byte(b.String()))
}

// roff escapes text for a man page line: backslashes, minus signs, and a
// leading dot or quote that would read as a request.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
