#!/usr/bin/env bash
# Sets up a fresh machine for this repository: pnpm at the pinned version, the software Vulkan driver that
# lets WebGPU run without a GPU (Debian/Ubuntu, when run as root or with sudo), Chromium and Firefox for
# the headless browser tests (in CI, or with SETUP_BROWSER=1; Debian), and the dependencies from the lockfile. Safe to run
# again.
set -euo pipefail
cd "$(dirname "$0")/.."

pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install --global --no-fund --no-audit "pnpm@$pnpm_version" >/dev/null
fi

bash scripts/setup-vulkan.sh || echo "setup: no software Vulkan driver installed; WebGPU may be unavailable (the CPU device still works)"
# Chromium and Firefox, for the browser tests: in CI, or when asked for.
if [ "${CI:-}" = "true" ] || [ "${SETUP_BROWSER:-}" = "1" ]; then
  bash scripts/setup-browser.sh || echo "setup: no browsers installed; the browser tests will skip"
fi

if [ "${CI:-}" = "true" ]; then
  pnpm install --frozen-lockfile
else
  pnpm install
fi
