package main

import "time"

// ticker wakes the open-loop pacer.
type ticker interface {
	Wait() int
	Stop()
}

// stdTicker is the portable ticker: fine at 1 ms and above.
type stdTicker struct{ t *time.Ticker }

func newStdTicker(interval time.Duration) ticker { return stdTicker{time.NewTicker(interval)} }

func (t stdTicker) Wait() int { <-t.t.C; return 1 }
func (t stdTicker) Stop()     { t.t.Stop() }
