package main

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/asnrelay/asnrelay/apple/appletest"
)

// Identity of the app the bodies are for; the relay under test is
// configured with it so that every body verifies and is forwarded.
const (
	benchApp    = "myapp"
	benchBundle = "com.example.app"
	benchEnv    = "Sandbox"
)

// newBenchCA mints the throwaway chain the bodies are signed with; the relay
// trusts its root through apple.root_certs.
func newBenchCA() (*appletest.CA, error) {
	now := time.Now()
	return appletest.New(now.Add(-time.Hour), now.Add(7*24*time.Hour))
}

// notification is the ASN V2 payload of every body: a renewal with its
// data block, and an extra top-level field that pads the body to size.
func notification(uuid, pad string) appletest.Notification {
	return appletest.Notification{
		Type: "DID_RENEW", UUID: uuid, SignedDate: time.Now(),
		BundleID: benchBundle, AppAppleID: 1234567890, Environment: benchEnv,
		BundleVersion: "1.0",
		Extra:         map[string]any{"benchPadding": pad},
	}
}

// padFor finds the padding that makes a body exactly size bytes long (a
// base64url payload cannot reach every length; then one space after the
// opening brace makes up the difference) and reports how many spaces.
func padFor(ca *appletest.CA, size int) (pad string, spaces int, err error) {
	base, err := ca.Body(notification(newUUID(), ""))
	if err != nil {
		return "", 0, err
	}
	if len(base) > size {
		return "", 0, fmt.Errorf("an unpadded body is %d bytes, over %d", len(base), size)
	}
	guess := (size - len(base)) * 3 / 4
	best, bestLen := -1, 0
	for k := max(0, guess-6); k <= guess+6; k++ {
		b, err := ca.Body(notification(newUUID(), strings.Repeat("x", k)))
		if err != nil {
			return "", 0, err
		}
		if len(b) <= size && len(b) > bestLen {
			best, bestLen = k, len(b)
		}
	}
	if best < 0 {
		return "", 0, fmt.Errorf("no padding gives a %d byte body", size)
	}
	return strings.Repeat("x", best), size - bestLen, nil
}

// signBodies signs n bodies of exactly size bytes, each with its own
// notificationUUID, on every core.
func signBodies(ca *appletest.CA, n, size int) ([]Body, error) {
	pad, spaces, err := padFor(ca, size)
	if err != nil {
		return nil, err
	}
	bodies := make([]Body, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				b, err := ca.Body(notification(newUUID(), pad))
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				if spaces > 0 {
					b = append([]byte("{"+strings.Repeat(" ", spaces)), b[1:]...)
				}
				bodies[i] = Body{Bytes: b, Key: sinkKey(b)}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("sign bodies: %w", firstErr)
	}
	if len(bodies) > 0 && len(bodies[0].Bytes) != size {
		return nil, fmt.Errorf("sign bodies: made %d bytes, want %d", len(bodies[0].Bytes), size)
	}
	return bodies, nil
}

// newUUID is a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// uniqueKeys checks that no two bodies share a sink key.
func uniqueKeys(bodies []Body) error {
	seen := make(map[string]struct{}, len(bodies))
	for _, b := range bodies {
		if _, dup := seen[b.Key]; dup {
			return fmt.Errorf("two bodies end with %q", b.Key)
		}
		seen[b.Key] = struct{}{}
	}
	return nil
}

// unverifiableBodies makes n distinct bodies of size bytes shaped like
// notifications whose JWS has no certificate chain: verification fails at
// once, with no signature check.
func unverifiableBodies(n, size int) ([]Body, error) {
	const head, tail = `{"signedPayload":"eyJhbGciOiJFUzI1NiJ9.`, `"}`
	pad := size - len(head) - len(tail) - 1 - 32
	if pad < 0 {
		return nil, fmt.Errorf("%d bytes is too small for a body", size)
	}
	prefix := head + strings.Repeat("A", pad) + "."
	bodies := make([]Body, n)
	for i := range bodies {
		b := []byte(fmt.Sprintf("%s%032x%s", prefix, i, tail))
		bodies[i] = Body{Bytes: b, Key: sinkKey(b)}
	}
	return bodies, nil
}
