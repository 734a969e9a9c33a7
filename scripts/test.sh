#!/usr/bin/env bash
# Runs every ringport test. On a fresh Debian 12 machine it first installs
# what the tests need (as root): a C compiler, liburing, fio.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in gcc make liburing-dev fio; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

export CARGO_TERM_COLOR=never
cargo build --workspace --release --all-targets
cargo test --workspace --release

# liburing's own test suite under `ringport run`, held to a recorded floor.
if [ -f scripts/liburing-suite.sh ]; then
  bash scripts/liburing-suite.sh
fi
