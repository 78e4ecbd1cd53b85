package apple

import (
	"crypto/ecdsa"
	"sync"
	"time"
)

// chainCacheSize bounds the verified chains kept. Apple signs with a handful
// of leaf certificates at a time; the cache starts over when full.
const chainCacheSize = 64

// chainCache remembers x5c chains that verified, so that the next JWS signed
// by the same chain costs one signature check instead of parsing three
// certificates and building the chain again. Only successes are kept, with
// the window in which every certificate of the chain (the anchoring root
// included) is valid: a JWS dated outside it takes the full path, which
// explains the failure precisely.
type chainCache struct {
	mu      sync.Mutex
	entries map[chainID]verifiedChain
}

// verifiedChain is what a JWS needs from a chain that verified.
type verifiedChain struct {
	leafKey             *ecdsa.PublicKey
	notBefore, notAfter time.Time
}

func (e verifiedChain) covers(at time.Time) bool {
	return !at.Before(e.notBefore) && !at.After(e.notAfter)
}

// chainID identifies a chain by the exact x5c strings of the header. The
// strings are the decoded header's own, so a lookup copies nothing.
type chainID [3]string

func (c *chainCache) get(k chainID) (verifiedChain, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok
}

func (c *chainCache) put(k chainID, e verifiedChain) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= chainCacheSize {
		c.entries = make(map[chainID]verifiedChain, chainCacheSize)
	}
	c.entries[k] = e
}
