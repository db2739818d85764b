// Package actions runs verified remote commands on the device: lock the
// screen, block a Bluetooth peer, and wipe. Verification, replay
// protection and the answer to the server happen before and after, in the
// agent; an Executor only acts and reports what it saw afterwards, read
// back from the system rather than assumed from a call that returned.
package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
)

// Executor runs the command kinds of protocol.Command on this platform.
type Executor interface {
	// Lock locks the user's session and reports done only once the
	// session reads locked.
	Lock(ctx context.Context) Outcome
	// BluetoothBlock blocks and disconnects one peer by address.
	BluetoothBlock(ctx context.Context, address string) Outcome
	// Plan says what Erase would destroy. With an error it still returns
	// the part of the plan it could build: erasing that is better than
	// nothing, but the wipe cannot be complete.
	Plan(ctx context.Context) (WipePlan, error)
	// Erase destroys the LUKS key slots and CJI paths of a plan. It does
	// not destroy the agent's identity or power off: the agent does both
	// after the server has the result.
	Erase(ctx context.Context, p WipePlan) Outcome
}

// Outcome is what a command did, in the shape of protocol.CommandResult.
type Outcome struct {
	Done    bool
	Message string
	Detail  map[string]string
	// Receipt is a wipe's facts, unsigned: the agent adds the device and
	// command, signs it with the identity key and sends it with the
	// result. Nil when nothing was erased that a receipt could state.
	Receipt *protocol.WipeReceipt
}

// WipeConfig is the site's wipe policy on the device.
type WipeConfig struct {
	DataVolumes []string `json:"data_volumes"` // LUKS volumes besides the root's: block devices or image files
	CJIPaths    []string `json:"cji_paths"`    // files and directories holding CJI outside the encrypted volumes
	PowerOff    bool     `json:"power_off"`
}

// maxConfigSize bounds the config read; a wipe policy is a few lines.
const maxConfigSize = 1 << 20

// LoadWipeConfig reads the wipe policy. A missing file is an empty policy:
// the root's LUKS devices are still erased. The file decides what gets
// destroyed, so one that others could write is refused.
func LoadWipeConfig(path string) (WipeConfig, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return WipeConfig{}, nil
	}
	if err != nil {
		return WipeConfig{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return WipeConfig{}, err
	}
	if !st.Mode().IsRegular() {
		return WipeConfig{}, fmt.Errorf("wipe config %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return WipeConfig{}, fmt.Errorf("wipe config %s is group or world writable (mode %04o)", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return WipeConfig{}, err
	}
	if len(b) > maxConfigSize {
		return WipeConfig{}, fmt.Errorf("wipe config %s is larger than %d bytes", path, maxConfigSize)
	}
	cfg, err := parseWipeConfig(b)
	if err != nil {
		return WipeConfig{}, fmt.Errorf("wipe config %s: %w", path, err)
	}
	return cfg, nil
}

func parseWipeConfig(b []byte) (WipeConfig, error) {
	var cfg WipeConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return WipeConfig{}, err
	}
	if dec.More() {
		return WipeConfig{}, errors.New("trailing data after the JSON object")
	}
	// Relative paths would resolve against the agent's working directory,
	// and "/" as a CJI path would delete the whole system file by file.
	for _, p := range cfg.DataVolumes {
		if !filepath.IsAbs(p) {
			return WipeConfig{}, fmt.Errorf("data_volumes: %q is not an absolute path", p)
		}
	}
	for _, p := range cfg.CJIPaths {
		if !filepath.IsAbs(p) {
			return WipeConfig{}, fmt.Errorf("cji_paths: %q is not an absolute path", p)
		}
		if filepath.Clean(p) == "/" {
			return WipeConfig{}, errors.New(`cji_paths: "/" is not a CJI path`)
		}
	}
	return cfg, nil
}

// WipePlan is what a wipe destroys, in order.
type WipePlan struct {
	LUKSDevices []string // headers to luksErase: the root's, then data volumes
	CJIPaths    []string
	PowerOff    bool
	Notes       []string // volumes skipped and why, parts of the system that could not be read
}

// String renders the plan for `cordon-agent wipe --plan`, numbered as the
// wipe policy numbers the steps so the two can be read side by side.
func (p WipePlan) String() string {
	var b strings.Builder
	b.WriteString("Remote wipe plan:\n")
	b.WriteString("1. cryptsetup luksErase (every key slot destroyed; the data can no longer be decrypted):\n")
	list(&b, p.LUKSDevices, "no LUKS device found")
	b.WriteString("2. Secure deletion of CJI paths (each file overwritten once with random data, then removed):\n")
	list(&b, p.CJIPaths, "no CJI path configured")
	b.WriteString("3. Destruction of the agent's identity key and enrollment, after the server acknowledges the wipe\n")
	if p.PowerOff {
		b.WriteString("4. Power-off\n")
	} else {
		b.WriteString("4. Power-off: not configured\n")
	}
	if len(p.Notes) > 0 {
		b.WriteString("Notes:\n")
		list(&b, p.Notes, "")
	}
	return b.String()
}

func list(b *strings.Builder, items []string, none string) {
	if len(items) == 0 {
		fmt.Fprintf(b, "   (%s)\n", none)
	}
	for _, it := range items {
		fmt.Fprintf(b, "   - %s\n", it)
	}
}

// Runner runs a command and returns its standard output; a failure's
// standard error is in the *exec.ExitError.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

type options struct {
	bus         func() (*dbus.Conn, error)
	run         Runner
	lockTimeout time.Duration
	root        string
}

// Option adjusts an Executor, for tests.
type Option func(*options)

// WithBus makes the executor use connections from get instead of its own
// system bus connection. It does not close them.
func WithBus(get func() (*dbus.Conn, error)) Option { return func(o *options) { o.bus = get } }

// WithRunner replaces how external tools (cryptsetup) are run.
func WithRunner(r Runner) Option { return func(o *options) { o.run = r } }

// WithLockTimeout bounds how long Lock waits for the session to read
// locked (10s by default).
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithRoot makes Plan read sysfs and mountinfo under dir instead of "/",
// so tests can describe a disk layout without having it.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

func newOptions(opts []Option) options {
	o := options{lockTimeout: 10 * time.Second, root: "/"}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// capDetail keeps a detail value within what a CommandResult carries; the
// message says how much was cut so nothing looks complete when it is not.
func capDetail(items []string, sep string) string {
	const limit = 1024
	s := strings.Join(items, sep)
	if len(s) <= limit {
		return s
	}
	n := 0
	var b strings.Builder
	for i, it := range items {
		if b.Len()+len(it)+len(sep) > limit-32 {
			n = len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
	}
	if b.Len() == 0 {
		// Bytes that are not UTF-8 would reach JSON as U+FFFD.
		head := strings.ToValidUTF8(input.Clip(s, limit-32), "")
		return head + fmt.Sprintf("... (%d bytes cut)", len(s)-len(head))
	}
	fmt.Fprintf(&b, "%s... (%d more)", sep, n)
	return b.String()
}
