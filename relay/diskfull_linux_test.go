//go:build linux

package relay

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/asnrelay/asnrelay/apple/appletest"
	"github.com/asnrelay/asnrelay/relay/config"
	"github.com/asnrelay/asnrelay/store"
)

// mountTmpfs mounts a tmpfs of the given size on a fresh directory, or
// skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the disk-full test needs root or CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { // runs before TempDir's removal
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes a file in dir until the file system is full and returns
// its path.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for range 1 << 16 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return filler
		}
	}
	t.Fatalf("%s never filled up", dir)
	return ""
}

// TestDiskFullAnswers503AndRecovers puts data_dir on a 2 MiB tmpfs, fills
// it, and checks that ingest answers 503 (Apple retries), that nothing is
// half-written, and that the relay takes notifications again by itself once
// space returns, with every earlier acknowledgement intact and delivered.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	s := newSink(t)
	cfg := testConfig(t, ca, target("t", s.URL))
	cfg.DataDir = filepath.Join(mountTmpfs(t, "2m"), "data")
	var logs logBuffer
	h := startRelayTweaked(t, cfg, zerolog.New(&logs), Options{}, nil)

	acked := map[string][]byte{}
	post := func(uuid string) int {
		b := body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: uuid})
		got := h.post(t, "myapp", b)
		if got == 200 {
			acked[uuid] = b
		}
		return got
	}
	for i := range 20 {
		if got := post(fmt.Sprintf("before-%d", i)); got != 200 {
			t.Fatalf("before the disk filled: %d", got)
		}
	}
	deliveredTo(t, s, 20)

	filler := fillUp(t, filepath.Dir(cfg.DataDir))

	// The store keeps up to 1 MiB past its data written ahead (prefill), so
	// about a hundred notifications still fit before the 503s begin.
	codes, posted := map[int]int{}, 0
	for ; posted < 600 && codes[503] < 10; posted++ {
		codes[post(fmt.Sprintf("full-%d", posted))]++
	}
	if codes[503] == 0 || codes[503]+codes[200] != posted {
		t.Fatalf("with the disk full: %v; want 503s (and nothing but 503 or 200)", codes)
	}
	if err := h.r.db.Check(); err != nil {
		t.Fatalf("bbolt check with the disk full: %v", err)
	}
	// Reads go on: the admin API still answers.
	if status, _ := h.call(t, "GET", "/api/v1/notifications", "", nil); status != 200 {
		t.Errorf("admin API with the disk full: %d", status)
	}
	if got := h.count(t); got != len(acked) {
		t.Errorf("%d stored, %d acknowledged: something half-written", got, len(acked))
	}

	// Space returns; the relay takes notifications again without a restart.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if got := post(fmt.Sprintf("after-%d", i)); got != 200 {
			t.Fatalf("after space returned: %d", got)
		}
	}
	// Delivery is at least once: an attempt whose record hit the full disk
	// is sent again, so wait for every body rather than for a count.
	undelivered := func() []string {
		var missing []string
		for uuid, b := range acked {
			found := false
			for _, got := range s.received() {
				found = found || bytes.Equal(got, b)
			}
			if !found {
				missing = append(missing, uuid)
			}
		}
		return missing
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(undelivered()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, uuid := range undelivered() {
		t.Errorf("%s was acknowledged but never delivered", uuid)
	}
	for seq := uint64(1); seq <= uint64(len(acked)); seq++ {
		if _, err := h.r.db.Body(seq); err != nil {
			t.Errorf("body %d: %v", seq, err)
		}
	}
	if !strings.Contains(logs.String(), "answering 503") {
		t.Error("the 503s were not logged")
	}
	t.Logf("2 MiB tmpfs data_dir filled: %v; after freeing space %d more acknowledged without a restart; all %d acknowledged delivered",
		codes, 20, len(acked))
	stopAndCheckFile(t, h)
}

// TestDiskFullDoesNotHammerTargets: while the store cannot record delivery
// attempts, a healthy target must not be sent the same deliveries over and
// over as fast as it answers; they wait like a failing target's backlog and
// go out (and are recorded) once space returns.
func TestDiskFullDoesNotHammerTargets(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	var hits atomic.Int64
	var up atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !up.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(make([]byte, 1024)) // kept with the attempt: every record needs space
	}))
	defer backend.Close()
	cfg := testConfig(t, ca, target("t", backend.URL, func(tg *config.Target) {
		tg.Retry = config.Retry{Initial: 5 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxAge: time.Hour}
	}))
	// Room for every record once the filler goes (each takes a few KiB of pages).
	cfg.DataDir = filepath.Join(mountTmpfs(t, "8m"), "data")
	var logs logBuffer
	h := startRelayTweaked(t, cfg, zerolog.New(&logs), Options{}, nil)
	const n = 200
	for i := range n {
		if got := h.post(t, "myapp", body(t, ca, appletest.Notification{Type: "DID_RENEW", UUID: fmt.Sprint("hammer-", i)})); got != 200 {
			t.Fatal(got)
		}
	}
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliveryPending}, n)
	filler := fillUp(t, filepath.Dir(cfg.DataDir))
	up.Store(true)
	before := hits.Load()
	// Watch the target for a while with the disk full.
	window := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(window) {
		if got := hits.Load() - before; got > 2*n {
			t.Fatalf("%d requests for %d deliveries while the store cannot record them", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	whileFull := hits.Load() - before
	if !strings.Contains(logs.String(), "record attempt") {
		t.Log("no attempt failed to be recorded: the tmpfs had room after all")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	h.waitDeliveries(t, store.DeliveryFilter{State: store.DeliverySucceeded}, n)
	t.Logf("disk full with %d deliveries due to a healthy target: %d requests in 500ms; all %d recorded once space returned, %d requests in all",
		n, whileFull, n, hits.Load()-before)
	stopAndCheckFile(t, h)
}

// TestReadOnlyDataDirIsAClearError: a data_dir on a file system mounted
// read-only (as ext4 does itself after I/O errors) fails Open with an error
// naming the file and the cause, rather than starting a relay that cannot
// acknowledge anything; once writable again, everything is still there.
func TestReadOnlyDataDirIsAClearError(t *testing.T) {
	ca := newCA(t)
	cfg := testConfig(t, ca)
	mnt := mountTmpfs(t, "2m")
	cfg.DataDir = filepath.Join(mnt, "data")
	h := startRelayTweaked(t, cfg, zerolog.Nop(), Options{}, nil)
	b := body(t, ca, appletest.Notification{UUID: "before-ro"})
	if got := h.post(t, "myapp", b); got != 200 {
		t.Fatal(got)
	}
	stopAndCheckFile(t, h)

	remount := func(flags uintptr) {
		t.Helper()
		if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_REMOUNT|flags, "size=2m"); err != nil {
			t.Fatalf("remount: %v", err)
		}
	}
	remount(syscall.MS_RDONLY)
	r, err := New(cfg, zerolog.Nop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Open()
	if err == nil || !strings.Contains(err.Error(), DBFile) || !errors.Is(err, syscall.EROFS) {
		t.Errorf("Open on a read-only data_dir: %v; want an error naming %s and EROFS", err, DBFile)
	}
	t.Logf("read-only data_dir: %v", err)
	r.Close()

	remount(0)
	h = startRelayTweaked(t, cfg, zerolog.Nop(), Options{}, nil)
	if stored, err := h.r.db.Body(1); err != nil || !bytes.Equal(stored, b) {
		t.Errorf("after remounting read-write: %v", err)
	}
	stopAndCheckFile(t, h)
}
