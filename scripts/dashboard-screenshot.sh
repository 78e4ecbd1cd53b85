#!/bin/sh
# Renders the admin dashboard of a relay holding demo data (a healthy target,
# a dead one, a failing one, an unverified notification, a duplicate) in
# headless Chromium, checks the page it built, and saves docs/dashboard.png.
# Needs Debian's Chromium: apt-get install -y chromium
set -eu
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
	echo "chromium not found: apt-get install -y chromium" >&2
	exit 1
fi
ASNRELAY_DASHBOARD_PNG="$PWD/docs/dashboard.png" go test -count=1 -run '^TestDashboardInChromium$' -v ./relay
