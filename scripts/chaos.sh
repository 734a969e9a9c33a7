#!/bin/bash
# Runs liburing's tests (all, or the ones named) under `ringport run` with
# an interception library whose engine is built with the `chaos` feature:
# schedule perturbation at race-prone points (yields, short sleeps; see
# crates/ringport-engine/src/chaos.rs), so that rare interleavings come up
# often. Same rows and last line as scripts/liburing-suite.sh; the per-test
# timeout is 60 s (LIBURING_TIMEOUT), as perturbed runs are slower.
#
#   bash scripts/chaos.sh [TEST...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CHAOS_TARGET_DIR:-target/chaos}
CARGO_TARGET_DIR=$dir cargo build --release -q -p ringport-preload -p ringport-cli --features ringport-engine/chaos
RINGPORT_BIN=$PWD/$dir/release/ringport LIBURING_TIMEOUT=${LIBURING_TIMEOUT:-60} exec bash scripts/liburing-suite.sh "$@"
