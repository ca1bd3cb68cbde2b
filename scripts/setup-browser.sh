#!/usr/bin/env bash
# Installs Chromium for the test that runs the browser example in a real (headless) browser, whose WebGPU
# runs on its built-in software adapter (SwiftShader). Debian only: its `chromium` package is a plain
# package (Ubuntu's is a snap, which containers cannot run). Without it that test skips, unless
# REQUIRE_BROWSER=1 (CI), where it fails.
set -euo pipefail

if [ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null; then
  exit 0 # already there
fi
[ "$(. /etc/os-release && echo "${ID:-}")" = "debian" ] || { echo "setup-browser: not Debian; install Chromium yourself and set CHROMIUM to its path"; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-browser: needs root to install packages"; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
