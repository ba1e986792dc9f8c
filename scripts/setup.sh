#!/usr/bin/env bash
# Installs dtrain's build dependencies from Debian's packages and builds it
# into ./build (Release). Extra arguments go to the CMake configure step,
# e.g. scripts/setup.sh -DDTRAIN_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake libgtest-dev libcli11-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin
          iproute2 libdnnl-dev libopenblas-dev libblis-dev libeigen3-dev zlib1g-dev
          dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built ./build/dtrain"
