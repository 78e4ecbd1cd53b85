#!/usr/bin/env bash
# Builds asnrelay and the no-op server, installs Express with npm, and runs
# the benchmark: each server pinned to core 0, the load generator on core 1.
# Flags go to the harness (go run ./bench -h lists them), e.g.
#   bench/run.sh                # the table in the README, a few minutes
#   bench/run.sh -scale         # plus 1 M stored notifications (≈ 8 GiB) and a restart with 100 k pending
#   bench/run.sh -smoke         # seconds: checks the harness works
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
