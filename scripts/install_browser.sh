#!/usr/bin/env bash
# Install headless Chromium from Debian's own packages, for tests/test_browser.py.
#
# Why the system package: CI must not download browsers from anywhere but the
# distribution's mirrors, and the test drives Chromium over its DevTools protocol
# with a small Python client, so no Playwright/Puppeteer browser bundle is needed.
#
# Idempotent: does nothing when a Chromium is already on PATH. Needs root (or sudo).
set -euo pipefail

find_chromium() {
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}

existing=$(find_chromium)
if [ -n "$existing" ]; then
    echo "chromium already installed: $existing ($("$existing" --version 2>/dev/null || echo 'version unknown'))"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install_browser.sh: need root or sudo to run apt-get install chromium" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps it to the browser and its libraries (no desktop extras).
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

installed=$(find_chromium)
if [ -z "$installed" ]; then
    echo "install_browser.sh: apt-get finished but no chromium is on PATH" >&2
    exit 1
fi
echo "chromium installed: $installed ($("$installed" --version))"
