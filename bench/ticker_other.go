//go:build !linux

package main

import (
	"errors"
	"time"
)

func newTicker(time.Duration) (ticker, error) { return nil, errors.New("timerfd needs Linux") }
