package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// mappedResident is how many bytes of path's mappings are resident in this
// process, from /proc/self/smaps.
func mappedResident(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var total int64
	inFile := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			inFile = len(fields) == 6 && fields[5] == path
		case inFile && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps Rss %q: %v", sc.Text(), err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read smaps: %v", err)
	}
	return total
}

func TestTrimLetsGoOfMappedPagesAndKeepsTheirBytes(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	const writers, each, size = 32, 32, 16 << 10 // 16 MiB of bodies
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := bytes.Repeat([]byte{byte('a' + (w+i)%26)}, size)
				seq, err := db.Append(Incoming{App: "myapp", Body: body, ReceivedAt: now})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				seqs <- seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	bodies := map[uint64][]byte{} // copies, read before the trim
	for seq := range seqs {
		b, err := db.Body(seq)
		if err != nil || len(b) != size {
			t.Fatalf("body %d: %d bytes, %v", seq, len(b), err)
		}
		bodies[seq] = b
	}
	before := mappedResident(t, db.Path())
	if before < 8<<20 {
		t.Fatalf("%d bytes of the file resident after reading 16 MiB of bodies; want at least 8 MiB", before)
	}
	if err := db.trim(0); err != nil {
		t.Fatalf("trim: %v", err)
	}
	after := mappedResident(t, db.Path())
	if after > 1<<20 {
		t.Errorf("%d bytes of the file resident after the trim (%d before); want under 1 MiB", after, before)
	}
	// The pages are read again from the page cache, unchanged.
	inbox, err := db.Inbox(writers * each)
	if err != nil || len(inbox) == 0 {
		t.Fatalf("inbox after the trim: %d, %v", len(inbox), err)
	}
	for _, r := range inbox {
		if !bytes.Equal(r.Body, bodies[r.Seq]) {
			t.Fatalf("body %d changed after the trim", r.Seq)
		}
	}
}

func TestTrimLeavesSmallFilesAlone(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	seq, err := db.Append(Incoming{App: "myapp", Body: bytes.Repeat([]byte("x"), 64<<10), ReceivedAt: now})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := db.Body(seq); err != nil {
		t.Fatalf("body: %v", err)
	}
	before := mappedResident(t, db.Path())
	if err := db.trim(trimAbove); err != nil {
		t.Fatalf("trim: %v", err)
	}
	if after := mappedResident(t, db.Path()); after < before {
		t.Errorf("a file under %d bytes was trimmed: %d resident bytes before, %d after", trimAbove, before, after)
	}
}

// While the file grows (and bbolt remaps it), trims running all the time
// must not change a byte that readers see.
func TestTrimWhileTheFileGrowsAndIsRead(t *testing.T) {
	now := t0
	db := openTest(t, &now)
	stop := make(chan struct{})
	trims := make(chan int)
	go func() {
		n := 0
		defer func() { trims <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := db.trim(0); err != nil {
				t.Errorf("trim: %v", err)
				return
			}
			n++
		}
	}()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 64 {
				body := bytes.Repeat([]byte{byte('a' + (w*64+i)%26)}, 8<<10+w*64+i)
				seq, err := db.Append(Incoming{App: "myapp", Body: body, ReceivedAt: now})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if got, err := db.Body(seq); err != nil || !bytes.Equal(got, body) {
					t.Errorf("body %d read back wrong during trims (%d bytes, %v)", seq, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if n := <-trims; n == 0 {
		t.Fatal("no trim ran while the bodies were written")
	}
}
