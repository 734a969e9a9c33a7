#!/usr/bin/env bash
# fio on ringport, with data verification:
#
#   scripts/fio-verify.sh [SIZE]        (default SIZE=64m)
#
# Runs `ringport run -- fio --ioengine=io_uring` with verify=crc32c on three
# jobs over one file (sequential write, then random read, then randrw, each
# verifying what it reads against the checksums the writes stored), and
# fails unless every job reports zero errors. Needs fio (apt-get install fio).
#
# Environment:
#   RINGPORT_BIN     ringport binary (default: build the release one)
#   FIO_DIR          where the data file goes (default: a fresh temp dir)
#   FIO_IODEPTH      queue depth (default 16)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${1:-64m}
DEPTH=${FIO_IODEPTH:-16}
command -v fio >/dev/null || { echo "fio-verify: fio not installed (apt-get install fio)" >&2; exit 2; }

if [ -n "${RINGPORT_BIN:-}" ]; then
	RINGPORT=$(realpath "$RINGPORT_BIN")
else
	(cd "$ROOT" && cargo build -q --release -p ringport-cli -p ringport-preload) || exit 2
	RINGPORT=${CARGO_TARGET_DIR:-$ROOT/target}/release/ringport
fi

DIR=${FIO_DIR:-$(mktemp -d)}
trap '[ -z "${FIO_DIR:-}" ] && rm -rf "$DIR"' EXIT

# terse v3: field 3 = job name, 5 = error
out=$(cd "$DIR" && timeout 300 "$RINGPORT" run -- fio --output-format=terse --terse-version=3 - <<JOB
[global]
ioengine=io_uring
directory=$DIR
filename=fio-verify.dat
size=$SIZE
bs=4k
iodepth=$DEPTH
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1

[seqwrite]
rw=write

[randread]
stonewall
rw=randread

[randrw]
stonewall
rw=randrw
rwmixread=50
JOB
)
rc=$?
echo "$out" | awk -F';' '{printf "%-10s errors=%s read_kb=%s write_kb=%s\n", $3, $5, $6, $47}'
jobs=$(echo "$out" | awk -F';' '$5 == 0 {n++} END {print n+0}')
if [ $rc -ne 0 ] || [ "$jobs" -ne 3 ]; then
	echo "fio-verify: FAIL (fio exit $rc, $jobs of 3 jobs without errors)" >&2
	exit 1
fi
echo "fio-verify: ok (3 jobs, zero errors, data verified with crc32c)"
