#!/usr/bin/env bash
# ringport against the kernel, in one run:
#
#   scripts/fio-bench.sh [SECONDS] [REPS]   (default 5 s per fio run, 3 reps)
#
# 1. fio 4k random reads, io_uring, QD32, on a page-cached file: natively
#    and under `ringport run`, alternating (native, ringport, ringport with
#    the syscall() fast path off) REPS times; prints each run's IOPS, the
#    mean of each and the ratios to native (target >= 90%). fio makes its
#    setup/register calls through libc's syscall() (the interposed fast
#    path); Debian's fio 3.33 on x86_64 makes io_uring_enter with an inline
#    syscall instruction (fio's FIO_ARCH_HAS_SYSCALL), which traps either
#    way. RINGPORT_SYSCALL_FASTPATH=0 makes every call trap.
# 2. The cost of one io_uring_enter that does nothing and of one NOP round
#    trip, natively and under ringport, through syscall() and through
#    inline instructions (tests/c/enter-cost.c).
# Native numbers need a kernel that allows io_uring.
#
# Environment: RINGPORT_BIN (default: build the release binary),
# BENCH_DIR (where the file goes; default a temp dir under /var/tmp, on
# disk), BENCH_SIZE (default 256M).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-5}
REPS=${2:-3}
command -v fio >/dev/null || { echo "fio-bench: fio not installed (apt-get install fio)" >&2; exit 2; }
if [ -n "${RINGPORT_BIN:-}" ]; then
	RINGPORT=$(realpath "$RINGPORT_BIN")
else
	(cd "$ROOT" && cargo build -q --release -p ringport-cli -p ringport-preload) || exit 2
	RINGPORT=${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport
fi
DIR=${BENCH_DIR:-$(mktemp -d -p /var/tmp)}
mkdir -p "$DIR"
trap '[ -z "${BENCH_DIR:-}" ] && rm -rf "$DIR"' EXIT
FILE=$DIR/fio-bench.dat

SIZE=${BENCH_SIZE:-256M}
[ -f "$FILE" ] || fio --name=prep --filename="$FILE" --size="$SIZE" --rw=write --bs=1m --output=/dev/null || exit 2

# terse v3 field 8 = read IOPS. The file is read into the page cache right
# before each run (a warm-up read), and --invalidate=0 keeps fio from
# dropping it from the cache at start (its default), so the reads are
# served from the page cache, not the disk.
iops() {
	cat "$FILE" >/dev/null
	"$@" fio --name=r --ioengine=io_uring --filename="$FILE" --size="$SIZE" --rw=randread \
		--bs=4k --iodepth=32 --direct=0 --invalidate=0 --time_based --runtime="$SECS" --output-format=terse \
		--terse-version=3 | awk -F';' '{print $8}'
}
native=() ringport=() trapped=()
for i in $(seq "$REPS"); do
	native+=("$(iops env)")
	ringport+=("$(iops "$RINGPORT" run --)")
	trapped+=("$(iops env RINGPORT_SYSCALL_FASTPATH=0 "$RINGPORT" run --)")
	echo "rep $i: native ${native[-1]} ringport ${ringport[-1]} ringport-trapped ${trapped[-1]} IOPS"
done
awk -v n="${native[*]}" -v r="${ringport[*]}" -v t="${trapped[*]}" 'function mean(s,  a, k, i, sum) {
	k = split(s, a, " "); for (i = 1; i <= k; i++) sum += a[i]; return k ? sum / k : 0 }
BEGIN { N = mean(n); R = mean(r); T = mean(t)
	printf "fio 4k randread QD32 page cache, mean of %d: native %d IOPS, ringport %d (%.2fx), ringport with syscall() trapped %d (%.2fx)\n",
		split(n, x, " "), N, R, N ? R / N : 0, T, N ? T / N : 0 }'

cc -O2 -o "$DIR/enter-cost" "$ROOT/crates/ringport-preload/tests/c/enter-cost.c" -luring || exit 2
printf 'native:           %s\n' "$("$DIR/enter-cost")"
printf 'ringport:         %s\n' "$("$RINGPORT" run -- "$DIR/enter-cost")"
printf 'ringport, no fast path: %s\n' "$(RINGPORT_SYSCALL_FASTPATH=0 "$RINGPORT" run -- "$DIR/enter-cost")"
