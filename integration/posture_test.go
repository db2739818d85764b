//go:build linux && !android

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

// TestLinuxPostureEndToEnd runs the real Linux collector against logind
// and BlueZ (python3-dbusmock on a private bus) in a real agent, and reads
// the result back through the API: a lock made on the device is in a
// report collected within a second, and in the device's lock timeline.
func TestLinuxPostureEndToEnd(t *testing.T) {
	bus := dbustest.Start(t)
	bus.Mock(t, "logind", "org.freedesktop.login1")
	bus.Mock(t, "bluez5", "org.bluez")
	var session dbus.ObjectPath
	if err := bus.Call(t, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddSession",
		"c1", "seat0", uint32(1000), "officer", true).Store(&session); err != nil {
		t.Fatal(err)
	}
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.AddAdapter", "hci0", "cruiser-12")
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.AddDevice", "hci0", "11:22:33:44:55:66", "Radio Headset")
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.PairDevice", "hci0", "11:22:33:44:55:66", uint32(0x240404))
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.ConnectDevice", "hci0", "11:22:33:44:55:66")

	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		dir := e.MustEnroll()
		sys := posture.NewSystem("test")
		t.Cleanup(func() { sys.Close() })
		// An hour between polls: only the logind watch can deliver the lock.
		a := e.StartAgent(dir, agent.WithCollector(sys), agent.WithPollInterval(time.Hour), agent.WithReportInterval(time.Hour))
		key := e.APIKey("laso")

		var dev struct {
			Posture protocol.Posture `json:"posture"`
		}
		testenv.Eventually(t, 20*time.Second, "first report with the session unlocked", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID(), key, nil, &dev)
			return dev.Posture.Lock != nil && dev.Posture.Lock.State == protocol.LockUnlocked
		})
		p := dev.Posture
		if gaps := p.Unexplained(); len(gaps) > 0 {
			t.Errorf("values missing without a reason in the API: %v", gaps)
		}
		if p.Bluetooth == nil || p.Bluetooth.Present == nil || !*p.Bluetooth.Present || len(p.Bluetooth.Devices) != 1 {
			t.Fatalf("bluetooth in the API: %+v", p.Bluetooth)
		}
		if d := p.Bluetooth.Devices[0]; d.Address != "11:22:33:44:55:66" || d.Name != "Radio Headset" || !d.Paired || !d.Connected {
			t.Errorf("peer: %+v", d)
		}
		// Disk and patch are read from this host: whatever they say, an
		// unknown value must carry its reason.
		if p.Disk == nil || (p.Disk.State == protocol.DiskUnknown && p.Disk.Unknown["state"] == "") {
			t.Errorf("disk: %+v", p.Disk)
		}
		if p.Patch == nil || (p.Patch.PendingSecurity == nil && p.Patch.Unknown["pending_security"] == "") {
			t.Errorf("patch: %+v", p.Patch)
		}
		if p.Hygiene == nil || p.LockPolicy == nil {
			t.Errorf("hygiene %+v, lock policy %+v", p.Hygiene, p.LockPolicy)
		}

		lockedAt := time.Now()
		bus.Call(t, "org.freedesktop.login1", session, "org.freedesktop.login1.Session.SetLockedHint", true)
		var timeline struct {
			Entries []struct {
				At     time.Time `json:"at"`
				State  string    `json:"state"`
				Source string    `json:"source"`
			} `json:"entries"`
		}
		testenv.Eventually(t, 20*time.Second, "the lock in the timeline", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/lock-timeline", key, nil, &timeline)
			n := len(timeline.Entries)
			return n > 0 && timeline.Entries[n-1].State == protocol.LockLocked
		})
		n := len(timeline.Entries)
		if n < 2 || timeline.Entries[n-2].State != protocol.LockUnlocked {
			t.Fatalf("timeline %+v", timeline.Entries)
		}
		if lag := timeline.Entries[n-1].At.Sub(lockedAt); lag > time.Second {
			t.Errorf("the lock was collected %v after it happened; want within a second", lag)
		}
		bus.Call(t, "org.freedesktop.login1", session, "org.freedesktop.login1.Session.SetLockedHint", false)
		testenv.Eventually(t, 20*time.Second, "the unlock in the timeline", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/lock-timeline", key, nil, &timeline)
			return timeline.Entries[len(timeline.Entries)-1].State == protocol.LockUnlocked
		})
	})
}

// TestLASOWipeErasesARealLUKSVolume: a real agent, given a LUKS2 image as
// a data volume, is wiped by a LASO through the API. Afterwards no key
// opens the image, the command is done, the device is revoked and its
// old certificate is refused at the gateway. The device's signed receipt
// arrived with the answer and verifies, online and offline
// (checkWipeReceipt). All of it holds for an agent whose key is a file
// and for one whose key is in a TPM (swtpm), which signed the receipt in
// the TPM and after which the TPM holds no trace of the key.
func TestLASOWipeErasesARealLUKSVolume(t *testing.T) {
	needs.Tool(t, "cryptsetup", "cryptsetup-bin")
	for _, keys := range []keystore.Choice{keystore.FileKind, keystore.TPMKind} {
		t.Run(string(keys), func(t *testing.T) { wipeErasesARealLUKSVolume(t, keys) })
	}
}

func wipeErasesARealLUKSVolume(t *testing.T, keys keystore.Choice) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		work := t.TempDir()
		img, keyFile := filepath.Join(work, "cji.img"), filepath.Join(work, "passphrase")
		os.WriteFile(keyFile, []byte("correct horse battery staple"), 0o600)
		os.WriteFile(img, nil, 0o600)
		if err := os.Truncate(img, 20<<20); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
			"--pbkdf-force-iterations", "1000", "--key-file", keyFile, img).CombinedOutput(); err != nil {
			t.Fatalf("luksFormat: %v\n%s", err, out)
		}
		opens := func() error {
			return exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", keyFile, img).Run()
		}
		if err := opens(); err != nil {
			t.Fatalf("the passphrase must open the image before the wipe: %v", err)
		}
		// The system volume is described by a fixture (a plain partition),
		// so the test can never erase the disk of the machine it runs on.
		root := filepath.Join(work, "root")
		os.MkdirAll(filepath.Join(root, "proc/self"), 0o755)
		os.MkdirAll(filepath.Join(root, "sys/block/vda/slaves"), 0o755)
		os.MkdirAll(filepath.Join(root, "sys/dev/block"), 0o755)
		os.Symlink(filepath.Join(root, "sys/block/vda"), filepath.Join(root, "sys/dev/block/254:0"))
		os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte("22 1 254:0 / / rw - ext4 /dev/vda rw\n"), 0o644)

		e := testenv.New(t, dsn(t))
		laso := e.APIKey("laso")
		var (
			dir state.Dir
			sim *swtpmtest.TPM
		)
		if keys == keystore.TPMKind {
			sim = swtpmtest.Start(t)
			dir = enrollTPM(t, e, sim)
			dir.Keys = keystore.Auto
		} else {
			dir = e.MustEnroll()
		}
		// The device's credentials as they were before the wipe: the
		// certificate with its signer (for a TPM key, a signer holding
		// the key's blobs in memory).
		cert, err := dir.Certificate()
		if err != nil {
			t.Fatal(err)
		}
		ex := actions.New(actions.WipeConfig{DataVolumes: []string{img}}, actions.WithRoot(root))
		a := e.StartAgent(dir, agent.WithExecutor(ex))
		waitOnline(t, e, laso, a.DeviceID())

		st, c := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "wipe", "confirm": a.DeviceID()})
		if st != 202 {
			t.Fatalf("wipe: %d", st)
		}
		done := waitCommand(t, e, laso, c.ID, "done")
		if done.Result == nil || !strings.Contains(done.Result.Detail["erased"], img) {
			t.Fatalf("wipe result %+v", done.Result)
		}
		checkWipeReceipt(t, e, laso, c.ID, a.DeviceID(), img)
		if err := opens(); err == nil {
			t.Fatal("the passphrase still opens the image after the wipe")
		}
		var dev struct {
			Status string `json:"status"`
		}
		testenv.Eventually(t, 10*time.Second, "device revoked", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID(), laso, nil, &dev)
			return dev.Status == "revoked"
		})
		testenv.Eventually(t, 10*time.Second, "identity destroyed", func() bool {
			_, err := os.Stat(filepath.Join(dir.Path, "agent.json"))
			return os.IsNotExist(err)
		})
		for _, f := range []string{"key.pem", "tpm-key.pub", "tpm-key.priv", "cert.pem"} {
			if _, err := os.Stat(filepath.Join(dir.Path, f)); !os.IsNotExist(err) {
				t.Errorf("%s survived the wipe", f)
			}
		}
		if _, err := dir.Certificate(); err == nil {
			t.Fatal("the wiped state dir still makes a client certificate")
		}
		if sim != nil {
			checkTPMHoldsNoKey(t, sim, cert.Leaf.PublicKey)
		}
		if ws, err := dial(e, cert); err == nil {
			ws.Close()
			t.Fatal("the wiped device's certificate still connects")
		}
	})
}

// TestLockCommandAgainstLogind: a LASO's lock reaches a real agent whose
// executor asks logind to lock; the agent answers done only once the
// session reads locked, as the desktop's locker makes it.
func TestLockCommandAgainstLogind(t *testing.T) {
	bus := dbustest.Start(t)
	bus.Mock(t, "logind", "org.freedesktop.login1")
	var session dbus.ObjectPath
	if err := bus.Call(t, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddSession",
		"c1", "seat0", uint32(1000), "officer", true).Store(&session); err != nil {
		t.Fatal(err)
	}
	// The screen locker: logind's Lock only signals; the locker locks the
	// screen and sets LockedHint, a moment later.
	opts := []dbus.MatchOption{dbus.WithMatchObjectPath(session), dbus.WithMatchInterface("org.freedesktop.login1.Session"), dbus.WithMatchMember("Lock")}
	if err := bus.Conn.AddMatchSignal(opts...); err != nil {
		t.Fatal(err)
	}
	signals := make(chan *dbus.Signal, 4)
	bus.Conn.Signal(signals)
	var lockedAt time.Time
	var mu sync.Mutex
	go func() {
		for range signals {
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			lockedAt = time.Now()
			mu.Unlock()
			bus.Conn.Object("org.freedesktop.login1", session).Call("org.freedesktop.login1.Session.SetLockedHint", 0, true)
		}
	}()

	e := testenv.New(t, "")
	laso := e.APIKey("laso")
	a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(actions.New(actions.WipeConfig{})))
	waitOnline(t, e, laso, a.DeviceID())
	st, c := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "lock"})
	if st != 202 {
		t.Fatalf("lock: %d", st)
	}
	done := waitCommand(t, e, laso, c.ID, "done")
	if done.Result == nil || done.Result.Detail["lock_state"] != "locked" {
		t.Fatalf("lock result %+v", done.Result)
	}
	var completed struct {
		CompletedAt time.Time `json:"completed_at"`
	}
	e.Do("GET", "/api/v1/commands/"+c.ID, laso, nil, &completed)
	mu.Lock()
	defer mu.Unlock()
	if lockedAt.IsZero() || completed.CompletedAt.Before(lockedAt) {
		t.Fatalf("answered done at %v, before the session read locked at %v", completed.CompletedAt, lockedAt)
	}
}
