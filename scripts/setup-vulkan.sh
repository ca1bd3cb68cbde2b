#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) so that WebGPU (Dawn) finds an adapter on a machine
# without a GPU. Dawn needs Mesa 24 or newer; Debian bookworm ships 22, so on bookworm the driver comes from
# the bookworm-backports suite, which is enabled by adding it to the existing Debian sources entry.
set -euo pipefail

if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -qE '^(2[4-9]|[3-9][0-9])\.'; then
  exit 0 # already there
fi
command -v apt-get >/dev/null || { echo "setup-vulkan: not a Debian-like system; install a Vulkan driver (Mesa 24+ lavapipe) yourself"; exit 1; }
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup-vulkan: needs root to install packages"; exit 1; }
  sudo="sudo"
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
target=()
if [ "$codename" = "bookworm" ]; then
  sources=/etc/apt/sources.list.d/debian.sources
  if [ -f "$sources" ] && ! grep -q 'bookworm-backports' "$sources"; then
    echo "setup-vulkan: enabling bookworm-backports in $sources"
    $sudo sed -i '0,/^Suites: bookworm\( .*\)\?$/s//Suites: bookworm\1 bookworm-backports/' "$sources"
  fi
  target=(-t bookworm-backports)
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${target[@]}" mesa-vulkan-drivers libvulkan1
