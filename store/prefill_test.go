package store

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// seekHole is Linux's SEEK_HOLE whence: the next hole at or after the offset.
const seekHole = 4

// TestPrefillWritesPastTheLastPage checks that the file has no hole for
// prefillAhead past bbolt's last page once the writer is idle, and that
// the zeros written there never reach data: every body reads back, and
// bbolt's check passes, after reopening.
func TestPrefillWritesPastTheLastPage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("prefill runs on Linux only")
	}
	path := filepath.Join(t.TempDir(), "asnrelay.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for i := range 600 {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, 3000+i)
		if _, err := db.Append(Incoming{App: "a", Body: body}); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var end, hole int64
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err := db.bolt.View(func(tx *bolt.Tx) error { end = tx.Size(); return nil }); err != nil {
			t.Fatal(err)
		}
		hole, err = syscall.Seek(int(f.Fd()), end, seekHole)
		if err != nil {
			t.Skipf("the file system does not tell holes: %v", err)
		}
		if hole >= end+prefillAhead || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond) // the writer prefills after its ack
	}
	if hole < end+prefillAhead {
		t.Errorf("first hole at %d, %d bytes past the last page; want at least %d", hole, hole-end, prefillAhead)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, want := range bodies {
		got, err := db.Body(uint64(i + 1))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("body %d after reopen: %d bytes, %v; want %d bytes", i+1, len(got), err, len(want))
		}
	}
	if err := db.Check(); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
}

// BenchmarkAppendOneAtATime measures appends of 4 KiB bodies that each get
// a commit of their own, as at a low steady rate, with a short pause between
// them, on a store past bbolt's first 16 MiB: with prefill, and without.
func BenchmarkAppendOneAtATime(b *testing.B) {
	for _, bc := range []struct {
		name      string
		noPrefill bool
	}{{"prefill", false}, {"none", true}} {
		b.Run(bc.name, func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "asnrelay.db"), Options{noPrefill: bc.noPrefill})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			body := bytes.Repeat([]byte("a"), 4096)
			for range 2500 { // about 20 MiB
				if _, err := db.Append(Incoming{App: "a", Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				time.Sleep(200 * time.Microsecond)
				b.StartTimer()
				start := time.Now()
				if _, err := db.Append(Incoming{App: "a", Body: body}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
