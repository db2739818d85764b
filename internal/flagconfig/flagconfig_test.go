package flagconfig

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }
func (l *list) IsList() bool       { return true }

type settings struct {
	data    *string
	listen  *string
	every   *time.Duration
	fips    *bool
	limit   *int
	names   list
	flagSet *flag.FlagSet
}

func newSettings() *settings {
	s := &settings{flagSet: flag.NewFlagSet("cordon-server serve", flag.ContinueOnError)}
	fs := s.flagSet
	s.data = fs.String("data", "/default", "")
	s.listen = fs.String("listen", "127.0.0.1:8443", "")
	s.every = fs.Duration("audit-checkpoint-interval", time.Hour, "")
	s.fips = fs.Bool("fips", false, "")
	s.limit = fs.Int("guess-limit", 10, "")
	fs.Var(&s.names, "hostname", "")
	fs.String("config", "", "")
	return s
}

func TestApplySetsFlagsByNameAndTheCommandLineWins(t *testing.T) {
	s := newSettings()
	if err := s.flagSet.Parse([]string{"--listen", "0.0.0.0:9443"}); err != nil {
		t.Fatal(err)
	}
	doc := `# the packaged example
data: /var/lib/cordon
listen: 0.0.0.0:8443
audit-checkpoint-interval: 30m
fips: true
guess-limit: 25
hostname:
  - mdm.agency.example
  - 10.0.0.5
`
	if err := Apply(s.flagSet, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if *s.data != "/var/lib/cordon" || *s.every != 30*time.Minute || !*s.fips || *s.limit != 25 {
		t.Errorf("file not applied: data %q every %v fips %v limit %d", *s.data, *s.every, *s.fips, *s.limit)
	}
	if *s.listen != "0.0.0.0:9443" {
		t.Errorf("listen = %q, the command line's 0.0.0.0:9443 must win over the file", *s.listen)
	}
	if got := s.names.String(); got != "mdm.agency.example,10.0.0.5" {
		t.Errorf("hostname = %q", got)
	}
}

func TestApplyRefuses(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"data: /x\nlisten-adress: 1.2.3.4:1\n", `unknown key "listen-adress" (line 2)`},
		{"config: /etc/other.yaml\n", `unknown key "config"`},
		{"listen:\n  - a:1\n  - b:2\n", `key "listen" (line 1) takes one value, not a list`},
		{"guess-limit: many\n", `key "guess-limit" (line 1)`},
		{"data: /a\ndata: /b\n", `key "data" given twice`},
		{"data:\n  nested: 1\n", "plain value or a list"},
		{"- data\n", "must be a mapping"},
		{"data: /a\n---\ndata: /b\n", "more than one YAML document"},
		{"data: [unclosed\n", "config"},
		{"hostname:\n  - [a, b]\n", "list items must be plain values"},
	} {
		s := newSettings()
		_ = s.flagSet.Parse(nil)
		err := Apply(s.flagSet, []byte(c.doc))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want one naming %q", c.doc, err, c.want)
		}
	}
}

func TestApplyEmptyAndNullKeepDefaults(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "data:\n", "~\n"} {
		s := newSettings()
		_ = s.flagSet.Parse(nil)
		if err := Apply(s.flagSet, []byte(doc)); err != nil {
			t.Errorf("%q: %v", doc, err)
		}
		if *s.data != "/default" {
			t.Errorf("%q: data %q", doc, *s.data)
		}
	}
}

func TestLoadRefusesAnOversizedFileAndNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "server.yaml")
	if err := os.WriteFile(p, []byte("data: /a\n"+strings.Repeat("#", MaxSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSettings()
	_ = s.flagSet.Parse(nil)
	if err := Load(s.flagSet, p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized: %v", err)
	}
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Load(s.flagSet, p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error must name the file: %v", err)
	}
}

func FuzzApply(f *testing.F) {
	for _, seed := range []string{
		"data: /var/lib/cordon\nhostname: [a, b]\n", "listen: 0.0.0.0:8443\nfips: true\n", "a: &x 1\nb: *x\n",
		"? [a]\n: 1\n", "data: !!binary aGk=\n", "- 1\n", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := newSettings()
		_ = s.flagSet.Parse(nil)
		if err := Apply(s.flagSet, b); err != nil && !errors.Is(err, ErrConfig) {
			t.Fatalf("error outside ErrConfig: %v", err)
		}
	})
}
