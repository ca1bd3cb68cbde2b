#!/usr/bin/env bash
# Installs the browsers of the browser tests (`pnpm test:browser`) and the browser example's test: Chromium,
# whose WebGPU runs on its built-in software adapter (SwiftShader), and Firefox ESR, whose WebGPU (wgpu) runs
# on the system's Vulkan driver (lavapipe, from scripts/setup-vulkan.sh). Debian only: its packages are plain
# packages (Ubuntu's are snaps, which containers cannot run). Without them those tests skip, unless
# REQUIRE_BROWSER=1 (CI), where they fail.
set -euo pipefail

wanted=()
[ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null || wanted+=(chromium)
[ -n "${FIREFOX:-}" ] || command -v firefox-esr >/dev/null || command -v firefox >/dev/null || wanted+=(firefox-esr)
if [ ${#wanted[@]} -eq 0 ]; then
  exit 0 # already there
fi
[ "$(. /etc/os-release && echo "${ID:-}")" = "debian" ] || { echo "setup-browser: not Debian; install Chromium and Firefox yourself and set CHROMIUM and FIREFOX to their paths"; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-browser: needs root to install packages"; exit 1; }
  sudo="sudo"
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${wanted[@]}"
