#!/bin/sh
# Installs Debian's chromium for the console's browser test (headless, no driver packages needed).
# Idempotent: does nothing when /usr/bin/chromium exists. Needs root or sudo; exits non-zero with a
# message when it cannot install, so the caller (the Makefile's test setup) can say why.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-chromium: /usr/bin/chromium is missing and this user cannot install packages (no root, no sudo)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: /usr/bin/chromium is missing and apt-get is not available; install Chromium by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
test -x /usr/bin/chromium
