#!/usr/bin/env bash
# Installs the Debian packages qvec needs to build, test and benchmark.
# Idempotent and silent when everything is present; needs root (or sudo) otherwise.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  librocksdb-dev          # storage/
  libssl-dev              # storage/: SHA-256 of snapshot files (libcrypto)
  libyaml-cpp-dev         # server/: qvec serve --config qvec.yaml
  libfaiss-dev libopenblas-dev  # index/ (k-means) and bench/ baselines
  libboost-dev            # server/: Asio + Beast (header-only)
  libgtest-dev libgmock-dev     # tests/
  libsimdjson-dev         # server/: JSON parsing (hot path: float arrays)
  libcli11-dev            # server/: command line
  libspdlog-dev libfmt-dev      # logging and formatting
  libhnswlib-dev          # bench/: graph-index reference
  clang-format clang-tidy
  curl
  nodejs npm              # dashboard/: bundled with esbuild from npm at build time
)
if [[ "${QVEC_SETUP_BENCH:-0}" == 1 ]]; then
  packages+=(dataset-fashion-mnist gnuplot-nox)
fi
if [[ "${QVEC_SETUP_FUZZ:-0}" == 1 ]]; then
  packages+=(clang libclang-rt-14-dev)  # `make fuzz`: libFuzzer, ASan, UBSan runtimes
fi
if [[ "${QVEC_SETUP_DOCS:-0}" == 1 ]]; then
  packages+=(doxygen)  # `make docs`: the API reference from include/qvec/
fi
if [[ "${QVEC_SETUP_TEST:-0}" == 1 ]]; then
  packages+=(clang python3)  # the thread_safety_analysis test
  packages+=(doxygen)        # the api_docs test (`make docs`)
  packages+=(chromium)       # the dashboard test (headless, driven by puppeteer-core)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# nodejs/npm may come from outside Debian's packages (e.g. a preinstalled Node.js 20).
if [[ ${#missing[@]} -gt 0 ]]; then
  filtered=()
  for p in "${missing[@]}"; do
    if [[ "$p" == nodejs || "$p" == npm ]] && command -v "${p/nodejs/node}" >/dev/null 2>&1; then
      continue
    fi
    filtered+=("$p")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >/dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
