#!/usr/bin/env bash
# ringport against the kernel, in one run:
#
#   scripts/fio-bench.sh [SECONDS]      (default 10 s per fio run)
#
# 1. fio 4k random reads, io_uring, QD32, on a page-cached file: natively and
#    under `ringport run`; prints both IOPS and the ratio (target >= 90%).
# 2. The cost of one io_uring_enter that does nothing, and of one NOP round
#    trip, natively and trapped (tests/c/enter-cost.c).
# Native numbers need a kernel that allows io_uring.
#
# Environment: RINGPORT_BIN (default: build the release binary),
# BENCH_DIR (where the file goes; default a temp dir), BENCH_SIZE (default 256m).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-10}
command -v fio >/dev/null || { echo "fio-bench: fio not installed (apt-get install fio)" >&2; exit 2; }
if [ -n "${RINGPORT_BIN:-}" ]; then
	RINGPORT=$(realpath "$RINGPORT_BIN")
else
	(cd "$ROOT" && cargo build -q --release -p ringport-cli -p ringport-preload) || exit 2
	RINGPORT=${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport
fi
DIR=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$DIR"
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$DIR"' EXIT
FILE=$DIR/fio-bench.dat

SIZE=${BENCH_SIZE:-256m}
[ -f "$FILE" ] || fio --name=prep --filename="$FILE" --size="$SIZE" --rw=write --bs=1m --output=/dev/null || exit 2

# terse v3 field 8 = read IOPS. The file is read into the page cache right
# before each run (fincore shows how much of it stayed there).
iops() {
	cat "$FILE" >/dev/null
	"$@" fio --name=randread --ioengine=io_uring --filename="$FILE" --size="$SIZE" --rw=randread \
		--bs=4k --iodepth=32 --time_based --runtime="$SECS" --output-format=terse \
		--terse-version=3 | awk -F';' '{print $8}'
}
native=$(iops env)
ringport=$(iops "$RINGPORT" run --)
awk -v n="$native" -v r="$ringport" 'BEGIN {
	printf "fio 4k randread QD32 page cache: native %d IOPS, ringport %d IOPS, ratio %.1f%%\n", n, r, n ? 100 * r / n : 0 }'

cc -O2 -o "$DIR/enter-cost" "$ROOT/crates/ringport-preload/tests/c/enter-cost.c" -luring || exit 2
printf 'native:   %s\n' "$("$DIR/enter-cost")"
printf 'ringport: %s\n' "$("$RINGPORT" run -- "$DIR/enter-cost")"
