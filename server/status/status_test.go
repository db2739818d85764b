package status

import (
	"errors"
	"fmt"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/profiles/apple"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/commands"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// root is the module's root, from this package's directory.
const root = "../.."

// edges are the packages (paths from the module root) whose errors reach
// the API or the console. Every error they export is in table. A new
// service goes here, and its errors into table.
var edges = []string{
	"server/store", "server/audit", "server/accounts", "server/auth", "server/commands", "server/compliance",
	"server/incidents", "enroll", "internal/input", "profiles", "profiles/apple", "pki/identity",
	"server/applemdm", "server/releases", "server/agentpkg",
}

// quiet are packages that export errors which never reach an HTTP edge,
// and why. A package with exported errors in neither list fails
// TestEveryPackageIsAccountedFor.
var quiet = map[string]string{
	"server/gateway":        "the agent channel's refusals, answered in frames",
	"protocol":              "wire-format errors, answered in frames",
	"internal/fips":         "start-up: the server does not start",
	"internal/secret":       "a malformed credential becomes auth.ErrUnauthenticated or enroll.ErrUnknownToken first",
	"internal/filelock":     "start-up and key making: a data dir another process holds",
	"internal/pprofserve":   "start-up: a profile address that is not loopback stops the server",
	"internal/cryptarchive": "host commands only: backup and restore refuse a damaged or altered file, a wrong passphrase or a weak passphrase file",
	"server/backup":         "host commands only: backup and restore refuse a target that exists, a data dir never served, a damaged archive",
	"internal/flagconfig":   "start-up: a config file key that is not a flag, or a value it refuses, stops the server",
	"pki":                   "start-up: a database another CA claimed (ErrOtherCA), the server does not start",
	"server/ticketkeys":     "session-ticket keys: logged at start and refresh; agents then make full handshakes",
	"attest":                "TPM evidence refusals reach the edges wrapped in enroll.ErrAttestation",
	"internal/version":      "a version that is not semver-like reaches the edges wrapped in releases.ErrInvalid",
	"server":                "host commands only: package agent on a data dir serve never started on (ErrNoEnrollURL)",
	"internal/apivalidate":  "tests only: an API answer the OpenAPI document does not describe fails the test",
	"receipt":               "a wipe receipt that does not verify is stored unverified with the reason, and cordonctl says why offline",
}

// notServer are trees outside the server's edges altogether.
var notServer = []string{"agent", "cmd", "bench", "integration", "apiclient"}

// table is every exported error of edges by "package.Name", with its status.
var table = map[string]struct {
	err  error
	want int
}{
	"server/store.ErrNotFound": {store.ErrNotFound, http.StatusNotFound},
	"server/store.ErrConflict": {store.ErrConflict, http.StatusConflict},
	// Start-up only: the server refuses to run, no request ever sees it.
	"server/store.SchemaTooNewError": {&store.SchemaTooNewError{Database: 9, Known: 2}, http.StatusInternalServerError},
	// Host command only: backup on PostgreSQL (pg_dump's job).
	"server/store.ErrNoSnapshot":        {store.ErrNoSnapshot, http.StatusInternalServerError},
	"server/store.ErrTokenUsed":         {store.ErrTokenUsed, http.StatusForbidden},
	"server/store.ErrTokenExp":          {store.ErrTokenExp, http.StatusForbidden},
	"server/store.ErrTokenBad":          {store.ErrTokenBad, http.StatusForbidden},
	"server/agentpkg.ErrNoBuild":        {agentpkg.ErrNoBuild, http.StatusConflict},
	"server/store.ErrTokenScope":        {store.ErrTokenScope, http.StatusForbidden},
	"server/audit.ErrUnavailable":       {audit.ErrUnavailable, http.StatusServiceUnavailable},
	"server/audit.ErrNoCheckpointKey":   {audit.ErrNoCheckpointKey, http.StatusServiceUnavailable},
	"server/accounts.ErrLastAdmin":      {accounts.ErrLastAdmin, http.StatusConflict},
	"server/accounts.ErrInvalid":        {accounts.ErrInvalid, http.StatusBadRequest},
	"server/auth.ErrUnauthenticated":    {auth.ErrUnauthenticated, http.StatusUnauthorized},
	"server/auth.ErrPassword":           {auth.ErrPassword, http.StatusBadRequest},
	"server/commands.ErrForbidden":      {commands.ErrForbidden, http.StatusForbidden},
	"server/commands.ErrInvalid":        {commands.ErrInvalid, http.StatusBadRequest},
	"server/commands.ErrConfirm":        {commands.ErrConfirm, http.StatusBadRequest},
	"server/commands.ErrRevoked":        {commands.ErrRevoked, http.StatusConflict},
	"server/compliance.ErrForbidden":    {compliance.ErrForbidden, http.StatusForbidden},
	"server/incidents.ErrForbidden":     {incidents.ErrForbidden, http.StatusForbidden},
	"server/compliance.ErrInvalid":      {compliance.ErrInvalid, http.StatusBadRequest},
	"server/compliance.ErrState":        {compliance.ErrState, http.StatusConflict},
	"server/compliance.ErrNameMismatch": {compliance.ErrNameMismatch, http.StatusBadRequest},
	"server/compliance.ErrRefused":      {compliance.ErrRefused, http.StatusBadRequest},
	"server/incidents.ErrInvalid":       {incidents.ErrInvalid, http.StatusBadRequest},
	"server/incidents.ErrTransition":    {incidents.ErrTransition, http.StatusBadRequest},
	"server/incidents.ErrNoLostMode":    {incidents.ErrNoLostMode, http.StatusConflict},
	"enroll.ErrInvalid":                 {enroll.ErrInvalid, http.StatusBadRequest},
	"enroll.ErrIdentityClaimed":         {enroll.ErrIdentityClaimed, http.StatusBadRequest},
	"enroll.ErrUnknownToken":            {enroll.ErrUnknownToken, http.StatusForbidden},
	"enroll.ErrTokenExpired":            {enroll.ErrTokenExpired, http.StatusForbidden},
	"enroll.ErrTokenUsed":               {enroll.ErrTokenUsed, http.StatusForbidden},
	"enroll.ErrAttestation":             {enroll.ErrAttestation, http.StatusForbidden},
	"enroll.ErrAttestReplay":            {enroll.ErrAttestReplay, http.StatusForbidden},
	"server/store.ErrChallengeUsed":     {store.ErrChallengeUsed, http.StatusForbidden},
	"internal/input.ErrInvalid":         {input.ErrInvalid, http.StatusBadRequest},
	"profiles/apple.ErrNoPasscode":      {apple.ErrNoPasscode, http.StatusBadRequest},
	"pki/identity.ErrBadCSR":            {identity.ErrBadCSR, http.StatusBadRequest},
	"internal/input.Error":              {input.Errorf("name", "bad"), http.StatusBadRequest},
	"profiles.Error":                    {&profiles.Error{Field: "name"}, http.StatusBadRequest},
	"server/releases.ErrInvalid":        {releases.ErrInvalid, http.StatusBadRequest},
	"server/releases.ErrDuplicate":      {releases.ErrDuplicate, http.StatusConflict},
	"server/releases.ErrDowngrade":      {releases.ErrDowngrade, http.StatusConflict},
	"server/releases.ErrForbidden":      {releases.ErrForbidden, http.StatusForbidden},
	"server/commands.ErrTooOld":         {commands.ErrTooOld, http.StatusBadRequest},
	"anything else":                     {errors.New("disk full"), http.StatusInternalServerError},
	"server/applemdm.ErrPushCert":       {applemdm.ErrPushCert, http.StatusBadRequest},
	"server/applemdm.ErrNoPushCert":     {applemdm.ErrNoPushCert, http.StatusConflict},
	"server/applemdm.ErrNotEnrolled":    {applemdm.ErrNotEnrolled, http.StatusConflict},
	// An Apple device's refused check-in, answered to the device by
	// nanomdm at /mdm (403, set there): no API or console request meets it.
	"server/applemdm.ErrNotThisDevice": {applemdm.ErrNotThisDevice, http.StatusInternalServerError},
	"server/applemdm.ErrUDIDEnrolled":  {applemdm.ErrUDIDEnrolled, http.StatusInternalServerError},
	// Server set-up on SQLite asking for a PostgreSQL schema: a bug, never
	// a request's fault.
	"server/store.ErrNotPostgres": {store.ErrNotPostgres, http.StatusInternalServerError},
}

// exportedErrors lists the exported errors of the package in dir (its
// non-test files), by name: Err* variables and *Error types.
func exportedErrors(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch s := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if gd.Tok == token.VAR && strings.HasPrefix(n.Name, "Err") && n.IsExported() {
							names = append(names, n.Name)
						}
					}
				case *ast.TypeSpec:
					if strings.HasSuffix(s.Name.Name, "Error") && s.Name.IsExported() {
						names = append(names, s.Name.Name)
					}
				}
			}
		}
	}
	return names
}

// TestEveryExportedError: each error the edges can meet, bare and
// wrapped, has its status.
func TestEveryExportedError(t *testing.T) {
	for name, c := range table {
		if got := Of(c.err); got != c.want {
			t.Errorf("Of(%s) = %d, want %d", name, got, c.want)
		}
		if got := Of(fmt.Errorf("context: %w", c.err)); got != c.want {
			t.Errorf("Of(wrapped %s) = %d, want %d", name, got, c.want)
		}
	}
}

// TestTableCoversEveryExportedError parses the edges' packages, so a new
// exported error cannot reach a caller as an unplanned 500.
func TestTableCoversEveryExportedError(t *testing.T) {
	for _, pkg := range edges {
		names := exportedErrors(t, filepath.Join(root, pkg))
		if len(names) == 0 {
			t.Errorf("%s exports no Err* variable: take it out of edges", pkg)
		}
		for _, n := range names {
			if _, ok := table[pkg+"."+n]; !ok {
				t.Errorf("%s.%s is not in status's table: give it a status in Of and a row here", pkg, n)
			}
		}
	}
}

// TestEveryPackageIsAccountedFor: a package of the server's side that
// exports errors is either an edge's source (in the table) or quiet,
// with why; so a new service (server/devices, say) cannot be forgotten.
func TestEveryPackageIsAccountedFor(t *testing.T) {
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || slices.Contains(notServer, strings.Split(rel, "/")[0])) {
			return filepath.SkipDir
		}
		if len(exportedErrors(t, path)) == 0 {
			return nil
		}
		if _, ok := quiet[rel]; !ok && !slices.Contains(edges, rel) {
			t.Errorf("%s exports errors but is neither in edges nor in quiet", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
