#!/bin/sh
# The long reliability suite: the crash loop (20 SIGKILLs under 500 req/s),
# 200 oversize bodies, and every test's long variant, with the race detector.
# The short versions run with go test ./... ; this takes a few minutes.
# The disk-full tests need to mount a tmpfs (root or CAP_SYS_ADMIN); they
# skip themselves elsewhere.
set -eu
cd "$(dirname "$0")/.."
ASNRELAY_LONG=1 go test -race -count=1 -timeout 20m -v \
	-run 'CrashLoop|SIGKILL|Oversize|Hostile|Slow|Idle|HeaderFlood|Outage|Forger|Secrets|DiskFull|ReadOnly' \
	. ./relay ./store | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|_test.go:[0-9]+: '
