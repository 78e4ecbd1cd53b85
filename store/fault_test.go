//go:build linux

package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "2m") on a fresh
// directory, or skips the test where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the disk-full test needs root or CAP_SYS_ADMIN", err)
	}
	// Registered after TempDir's cleanup, so it runs before it.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for range 1 << 14 { // far more than any small tmpfs holds
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			// Take the last few KiB too.
			for _, err := f.Write(chunk[:4096]); err == nil; _, err = f.Write(chunk[:4096]) {
			}
			return path
		}
	}
	t.Fatalf("%s never filled up", dir)
	return ""
}

// TestDiskFull: with the file system full, appends fail with ENOSPC and
// leave nothing behind, concurrent ones in the same batch included; what was
// acknowledged before stays readable; once space returns the same DB takes
// writes again without being reopened, and the file is sound throughout.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	path := filepath.Join(dir, "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	acked := map[uint64][]byte{}
	var mu sync.Mutex
	appendBody := func(i, size int) error {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		copy(b, fmt.Sprintf(`{"signedPayload":"%d"}`, i))
		seq, err := db.Append(Incoming{App: "myapp", Body: b, ReceivedAt: time.Unix(int64(i), 0)})
		if err == nil {
			mu.Lock()
			acked[seq] = b
			mu.Unlock()
		}
		return err
	}
	for i := range 20 {
		if err := appendBody(i, 2000); err != nil {
			t.Fatal(err)
		}
	}
	filler := fill(t, dir)

	// Eight writers at once, so failures land in shared batches too.
	var wg sync.WaitGroup
	var failures, successes int
	var otherErr error
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				err := appendBody(1000+w*100+i, 6000)
				mu.Lock()
				switch {
				case err == nil:
					successes++
				case errors.Is(err, syscall.ENOSPC):
					failures++
				default:
					otherErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if otherErr != nil {
		t.Errorf("append on a full disk: %v, want ENOSPC", otherErr)
	}
	if failures == 0 {
		t.Fatalf("no append failed on a full file system (%d succeeded)", successes)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check with the disk full: %v", err)
	}
	verify := func(db *DB, when string) {
		t.Helper()
		n, err := db.NotificationCount()
		if err != nil || n != len(acked) {
			t.Errorf("%s: %d notifications stored, %d acknowledged (%v)", when, n, len(acked), err)
		}
		for seq, want := range acked {
			got, err := db.Body(seq)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: body %d: %v", when, seq, err)
			}
		}
		inbox, err := db.Inbox(10000)
		if err != nil || len(inbox) != len(acked) {
			t.Errorf("%s: inbox holds %d, want %d (%v)", when, len(inbox), len(acked), err)
		}
	}
	verify(db, "disk full")

	// Space comes back: the next write succeeds on the same DB.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := appendBody(5000+i, 6000); err != nil {
			t.Fatalf("append after space returned: %v", err)
		}
	}
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check after recovery: %v", err)
	}
	verify(db, "after recovery")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// And the file opens as the next start would open it.
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("bbolt check after reopening: %v", err)
	}
	verify(db, "reopened")
	t.Logf("2 MiB tmpfs: %d appends failed with ENOSPC, %d squeezed in, nothing half-written; recovered without reopening; %d acknowledged bodies intact",
		failures, successes, len(acked))
}
