#!/usr/bin/env bash
# Runs every ringport test. On a fresh Debian 12 machine it first installs
# what the tests need (as root): a C compiler, liburing, fio, and gdb (for
# the stacks of a liburing test that hangs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  for p in gcc make liburing-dev fio gdb; do
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
# Races whose window a plain build almost never hits, under the engine's
# schedule perturbation (crates/ringport-engine/src/chaos.rs).
cargo test --release -p ringport-engine --features chaos --test diff_net --test diff_fs -- \
  accept_inline_beside_a_reactor_retry cancel_during_an_accept_retry fs_cancel_finds_work_a_worker_just_took

# aarch64: the engine and the interception library compile for it (their
# inline assembly included; nothing runs). The target's standard library
# comes from rustup; where it cannot be fetched the step says so.
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
   || rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
  cargo build --release --target aarch64-unknown-linux-gnu -p ringport-engine --lib
  cargo rustc --release --target aarch64-unknown-linux-gnu -p ringport-preload --lib --crate-type rlib
  cargo check --target aarch64-unknown-linux-gnu --workspace --all-targets
  echo "aarch64: the workspace compiles"
else
  echo "aarch64: NOT CHECKED (rustup could not install the aarch64-unknown-linux-gnu standard library)"
fi

# liburing's own test suite under `ringport run`, held to a recorded floor.
if [ -f scripts/liburing-suite.sh ]; then
  bash scripts/liburing-suite.sh
fi
