//go:build linux && !android

package actions

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cordon-mdm/cordon/agent/internal/blockdev"
	"github.com/cordon-mdm/cordon/agent/posture/linux"
)

func (e *linuxExecutor) system() linux.System {
	return linux.System{
		Sys:       filepath.Join(e.o.root, "sys"),
		Mountinfo: filepath.Join(e.o.root, "proc/self/mountinfo"),
		Dev:       "/dev",
		DevNum:    blockdev.Number,
	}
}

// Plan lists the LUKS headers under "/" and the configured data volumes.
// A data volume that is missing or not LUKS is skipped with a note: it
// holds no key slot to destroy, and `isLuks` stays true after luksErase,
// so "not LUKS" can never mean "already erased by us". A volume cryptsetup
// cannot examine stays in the plan, so its erase fails loudly instead of
// being skipped quietly.
func (e *linuxExecutor) Plan(ctx context.Context) (WipePlan, error) {
	p := WipePlan{CJIPaths: append([]string(nil), e.cfg.CJIPaths...), PowerOff: e.cfg.PowerOff}
	root, rootErr := linux.LuksBacking(e.system())
	switch {
	case rootErr != nil:
		rootErr = fmt.Errorf("LUKS devices under /: %w", rootErr)
		p.Notes = append(p.Notes, rootErr.Error()+"; the root filesystem may not be erased")
	case len(root) == 0:
		p.Notes = append(p.Notes, "the root filesystem is not on LUKS: nothing to erase for it")
	}
	p.LUKSDevices = append(p.LUKSDevices, root...)
	for _, v := range e.cfg.DataVolumes {
		if _, err := os.Stat(v); err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s skipped: %v", v, errors.Unwrap(err)))
			continue
		}
		_, err := e.o.run(ctx, "cryptsetup", "isLuks", v)
		var ee *exec.ExitError
		switch {
		case err == nil:
			if !slices.Contains(p.LUKSDevices, v) {
				p.LUKSDevices = append(p.LUKSDevices, v)
			}
		case errors.As(err, &ee) && ee.ExitCode() == 1:
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s skipped: not a LUKS volume", v))
		default:
			p.LUKSDevices = append(p.LUKSDevices, v)
			p.Notes = append(p.Notes, fmt.Sprintf("data volume %s: cryptsetup isLuks could not tell (%s); erase will be attempted", v, runErr(err)))
		}
	}
	return p, rootErr
}

// runErr includes the tool's own words, which say more than an exit code.
func runErr(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(bytes.TrimSpace(ee.Stderr)) > 0 {
		return fmt.Sprintf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err.Error()
}

// Erase destroys every key slot of the plan's LUKS devices, then the CJI
// paths. The LUKS erase comes first because it is what makes the data
// unrecoverable, takes a second, and leaves mounted filesystems working
// (the kernel still holds their keys) for the deletions that follow.
// Done needs at least one LUKS device erased and verified and every
// deletion to succeed: deleting files from an unencrypted disk leaves
// them recoverable, which is not a wipe.
func (e *linuxExecutor) Erase(ctx context.Context, p WipePlan) Outcome {
	var erased, failed []string
	rec := newReceipt()
	for _, dev := range p.LUKSDevices {
		// The header is read before and after, for the receipt: a volume
		// whose header cannot be read is still erased (the receipt
		// leaves it out and says so).
		before, beforeErr := readHeader(dev)
		if _, err := e.o.run(ctx, "cryptsetup", "luksErase", "--batch-mode", dev); err != nil {
			failed = append(failed, fmt.Sprintf("luksErase %s: %s", dev, runErr(err)))
			continue
		}
		if err := e.verifyErased(ctx, dev); err != nil {
			failed = append(failed, fmt.Sprintf("verify %s: %v", dev, err))
			continue
		}
		erased = append(erased, dev)
		after, afterErr := readHeader(dev)
		rec.volume(dev, before, after, errors.Join(beforeErr, afterErr))
	}
	luksFailures := len(failed)
	deleted, missing := 0, 0
	for _, path := range p.CJIPaths {
		n, err := secureDelete(path)
		deleted += n
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing++
		case err != nil:
			failed = append(failed, err.Error())
		default:
			rec.deleted(path, n)
		}
	}
	detail := map[string]string{"erased": capDetail(erased, ","), "deleted": strconv.Itoa(deleted)}
	if missing > 0 {
		detail["missing"] = strconv.Itoa(missing)
	}
	if len(failed) > 0 {
		detail["failed"] = capDetail(failed, "; ")
	}
	if len(p.Notes) > 0 {
		detail["notes"] = capDetail(p.Notes, "; ")
	}
	out := Outcome{Done: true, Message: fmt.Sprintf("erased %d LUKS devices, deleted %d CJI files", len(erased), deleted), Detail: detail}
	switch {
	case luksFailures > 0:
		out = Outcome{Message: fmt.Sprintf("%d of %d LUKS devices not verified erased", luksFailures, len(p.LUKSDevices)), Detail: detail}
	case len(erased) == 0:
		out = Outcome{Message: "no LUKS device to erase: the data on this device is not cryptographically erased", Detail: detail}
	case len(failed) > 0:
		out = Outcome{Message: fmt.Sprintf("LUKS devices erased; %d CJI deletions failed", len(failed)), Detail: detail}
	}
	rec.attach(&out)
	return out
}

// verifyErased reads the header back: luksErase exiting 0 is a claim, an
// empty key slot table is the fact.
func (e *linuxExecutor) verifyErased(ctx context.Context, dev string) error {
	text, err := e.o.run(ctx, "cryptsetup", "luksDump", dev)
	if err != nil {
		return fmt.Errorf("luksDump: %s", runErr(err))
	}
	return dumpShowsErased(text, func() ([]byte, error) {
		js, err := e.o.run(ctx, "cryptsetup", "luksDump", "--dump-json-metadata", dev)
		if err != nil {
			return nil, fmt.Errorf("luksDump --dump-json-metadata: %s", runErr(err))
		}
		return js, nil
	})
}

// secureDelete removes path, overwriting regular files first. It never
// follows a symlink, so a link to outside the CJI tree costs only the
// link. It returns the number of non-directory entries removed. On flash
// and copy-on-write filesystems the overwrite may land elsewhere than the
// old data; it is a best effort on top of the LUKS erase, not instead.
func secureDelete(path string) (int, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	if !st.IsDir() {
		if err := deleteEntry(path, st); err != nil {
			return 0, err
		}
		return 1, nil
	}
	n := 0
	var errs []error
	// WalkDir does not follow symlinks to directories; children are
	// handled before RemoveAll takes the emptied tree.
	walkErr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err == nil {
			err = deleteEntry(p, info)
		}
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		n++
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(path); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

func deleteEntry(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		if err := overwrite(path); err != nil {
			return fmt.Errorf("overwrite %s: %w", path, err)
		}
	}
	// Symlinks, sockets, FIFOs and device nodes are only unlinked:
	// writing through them would reach something that is not the CJI.
	return os.Remove(path)
}

func overwrite(path string) error {
	// NOFOLLOW and NONBLOCK: if the file was swapped for a symlink or a
	// FIFO since the Lstat, fail rather than write through or hang.
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("no longer a regular file")
	}
	size := st.Size()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	return f.Sync()
}
