#!/bin/sh
# Installs Debian's chromium for the browser tests (headless, no driver packages needed) and a
# Chinese font (fonts-wqy-zenhei) for the worker app's screenshots in Chinese.
# Idempotent: does nothing when /usr/bin/chromium and a Chinese font exist. Needs root or sudo; exits non-zero with a
# message when it cannot install, so the caller (the Makefile's test setup) can say why.
set -eu

has_chinese_font() {
    command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]
}

if [ -x /usr/bin/chromium ] && has_chinese_font; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "install-chromium: chromium or a Chinese font is missing and this user cannot install packages (no root, no sudo)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: chromium or a Chinese font is missing and apt-get is not available; install Chromium and fonts-wqy-zenhei by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-wqy-zenhei
test -x /usr/bin/chromium
