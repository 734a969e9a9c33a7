#!/usr/bin/env bash
# liburing's own test suite as ringport's yardstick.
#
#   scripts/liburing-suite.sh [--no-native] [--update-floor] [test-name...]
#
# Fetches liburing's source from Debian (`apt-get source liburing`, adding a
# deb-src entry if none exists), builds its tests with its own Makefile, and
# runs every test under `ringport run` and, where the kernel allows io_uring,
# natively too, each with a timeout (a test that times out gets its threads'
# states and stacks appended to its log first). Prints one row per test
#
#   name  native-result  ringport-result
#
# and then the line `N passed, N failed, N skipped` (ringport's results;
# excluded tests count as skipped). Exits non-zero when fewer tests pass
# under ringport than the floor in scripts/liburing-floor.txt.
#
# Nothing of liburing is committed: it is fetched into the cache directory
# ($RINGPORT_CACHE, default .ci/cache, git-ignored) at test time.
#
# Environment:
#   RINGPORT_CACHE      cache directory (default: <repo>/.ci/cache)
#   LIBURING_TIMEOUT    per-test timeout in seconds (default 20)
#   RINGPORT_PROFILE    cargo profile for ringport (default: release)
#   RINGPORT_BIN        use this ringport binary instead of building one
#                       (its libringport_preload.so must sit next to it)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${RINGPORT_CACHE:-$ROOT/.ci/cache}
TIMEOUT=${LIBURING_TIMEOUT:-20}
PROFILE=${RINGPORT_PROFILE:-release}
EXCLUDE_FILE=$ROOT/scripts/liburing-exclude.txt
FLOOR_FILE=$ROOT/scripts/liburing-floor.txt
SRC_DIR=$CACHE/liburing
LOG_DIR=$CACHE/liburing-logs

NATIVE=auto
UPDATE_FLOOR=0
ONLY=()
for a in "$@"; do
	case "$a" in
	--no-native) NATIVE=no ;;
	--update-floor) UPDATE_FLOOR=1 ;;
	-h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "unknown option $a" >&2; exit 2 ;;
	*) ONLY+=("${a%.t}") ;;
	esac
done

say() { echo "liburing-suite: $*" >&2; }
die() { say "$*"; exit 2; }

# --- 1. source -------------------------------------------------------------
# The URI of the apt entry that serves this release's main suite.
mirror_uri() {
	local codename=${VERSION_CODENAME:-bookworm}
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$codename" '
			/^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (u != "" && ok) print u }' "$f" | head -n1)
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$codename" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2; exit }
			$1 == "deb" && $0 ~ /\[/ { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) { if ($(i+2) == s) { print $(i+1); exit } break } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	return 1
}

ensure_deb_src() {
	if apt-cache showsrc liburing 2>/dev/null | grep -q '^Package: liburing'; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "no deb-src entry for liburing and not root: add one, or run as root"
	. /etc/os-release
	local codename=${VERSION_CODENAME:-bookworm}
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	# The mirror is the one the machine's own binary entries for the main
	# suite use (deb822 or one-line format): no host name is written here.
	local uri
	uri=$(mirror_uri)
	[ -n "$uri" ] || die "no Debian mirror found in the apt sources to add a deb-src entry for"
	say "adding a deb-src entry for $codename"
	{
		echo "Types: deb-src"
		echo "URIs: $uri"
		echo "Suites: $codename"
		echo "Components: main"
		[ -f "$keyring" ] && echo "Signed-By: $keyring"
	} >/etc/apt/sources.list.d/ringport-deb-src.sources
	apt-get update -qq >/dev/null || die "apt-get update failed"
}

fetch() {
	local dir
	dir=$(ls -d "$SRC_DIR"/liburing-*/ 2>/dev/null | head -n1)
	if [ -n "$dir" ] && [ -f "$dir/test/Makefile" ]; then
		echo "${dir%/}"
		return 0
	fi
	command -v dpkg-source >/dev/null || die "dpkg-source missing: apt-get install dpkg-dev"
	ensure_deb_src
	mkdir -p "$SRC_DIR"
	(cd "$SRC_DIR" && apt-get source -qq liburing >/dev/null 2>"$SRC_DIR/fetch.log") ||
		die "apt-get source liburing failed (see $SRC_DIR/fetch.log)"
	dir=$(ls -d "$SRC_DIR"/liburing-*/ 2>/dev/null | head -n1)
	[ -n "$dir" ] || die "apt-get source produced no liburing-* directory"
	echo "${dir%/}"
}

build_liburing() {
	local dir=$1
	[ -f "$dir/.ringport-built" ] && return 0
	say "building liburing tests in $dir"
	(cd "$dir" && ./configure >"$dir/build.log" 2>&1 &&
		make -j"$(nproc)" -C src >>"$dir/build.log" 2>&1 &&
		make -j"$(nproc)" -C test >>"$dir/build.log" 2>&1) ||
		die "liburing build failed (see $dir/build.log)"
	touch "$dir/.ringport-built"
}

LIBURING=$(fetch) || exit 2
build_liburing "$LIBURING"
TEST_DIR=$LIBURING/test

# --- 2. ringport -------------------------------------------------------------
if [ -n "${RINGPORT_BIN:-}" ]; then
	RINGPORT=$(realpath "$RINGPORT_BIN")
else
	say "building ringport ($PROFILE)"
	(cd "$ROOT" && cargo build -q --profile "$PROFILE" -p ringport-cli -p ringport-preload) ||
		die "cargo build failed"
	tdir=${CARGO_TARGET_DIR:-$ROOT/target}
	[ "$PROFILE" = dev ] && pdir=debug || pdir=$PROFILE
	RINGPORT=$tdir/$pdir/ringport
fi
[ -x "$RINGPORT" ] || die "no ringport binary at $RINGPORT"

# --- 3. the test list ------------------------------------------------------
mapfile -t ALL < <(make -s -C "$TEST_DIR" -f Makefile -f <(printf 'ringport-list:\n\t@echo $(test_targets)\n') ringport-list |
	tr ' ' '\n' | sed -n 's/\.t$//p' | awk '!seen[$0]++')
[ ${#ALL[@]} -gt 0 ] || die "could not list liburing's tests"
if [ ${#ONLY[@]} -gt 0 ]; then
	TESTS=("${ONLY[@]}")
else
	TESTS=("${ALL[@]}")
fi

declare -A EXCLUDED
if [ -f "$EXCLUDE_FILE" ]; then
	while read -r name reason; do
		case "$name" in ''|'#'*) continue ;; esac
		[ -n "$reason" ] || die "$EXCLUDE_FILE: $name has no reason"
		EXCLUDED[$name]=$reason
	done <"$EXCLUDE_FILE"
fi

# --- 4. running ------------------------------------------------------------
# result of one run: pass, skip, fail(N), fail(SIGNAME) or timeout
classify() {
	local rc=$1
	case "$rc" in
	0) echo pass ;;
	77) echo skip ;;
	124|137) echo timeout ;;
	*) if [ "$rc" -gt 128 ]; then echo "fail($(kill -l $((rc - 128)) 2>/dev/null || echo $rc))"; else echo "fail($rc)"; fi ;;
	esac
}

# hung_report PGID: what every thread of process group PGID is doing (state,
# kernel wait channel, system call with its user pc, kernel stack; user
# stacks through gdb where it is installed), for a test that timed out.
hung_report() {
	local pgid=$1 st p t
	echo "--- liburing-suite: timed out after ${TIMEOUT}s; the test's threads:"
	for st in /proc/[0-9]*/stat; do
		p=${st#/proc/}
		p=${p%/stat}
		[ "$(awk '{print $5}' "$st" 2>/dev/null)" = "$pgid" ] || continue
		for t in /proc/$p/task/*; do
			echo "pid $p tid ${t##*/} $(cat "$t/comm" 2>/dev/null) state $(awk '{print $3}' "$t/stat" 2>/dev/null)" \
				"wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cat "$t/syscall" 2>/dev/null)"
			sed 's/^/    /' "$t/stack" 2>/dev/null
		done
		if command -v gdb >/dev/null; then
			timeout 30 gdb -q -batch -p "$p" -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)'
		fi
	done
}

# run_one DIR LOG CMD...: runs CMD in DIR, in a process group of its own,
# with the per-test timeout; on a timeout it first appends hung_report to
# LOG, then ends the group (TERM, then KILL 5 s later) and returns 124.
run_one() {
	local dir=$1 log=$2
	shift 2
	(cd "$dir" && exec setsid "$@" </dev/null >"$log" 2>&1) &
	local pid=$! flag
	flag=$(mktemp)
	(
		s=
		trap '[ -n "$s" ] && kill "$s" 2>/dev/null; exit 0' TERM
		sleep "$TIMEOUT" &
		s=$!
		wait "$s"
		echo timeout >"$flag"
		hung_report "$pid" >>"$log" 2>&1
		kill -TERM -- "-$pid" 2>/dev/null
		sleep 5
		kill -KILL -- "-$pid" 2>/dev/null
	) &
	local dog=$! rc
	wait "$pid"
	rc=$?
	kill -TERM "$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	[ -s "$flag" ] && rc=124
	rm -f "$flag"
	return "$rc"
}

# run_lane LANE DIR CMD-PREFIX...: runs every test in DIR, writes LANE.results
run_lane() {
	local lane=$1 dir=$2
	shift 2
	local out=$LOG_DIR/$lane
	rm -rf "$out" && mkdir -p "$out"
	: >"$LOG_DIR/$lane.results"
	local t rc
	for t in "${TESTS[@]}"; do
		if [ -n "${EXCLUDED[$t]:-}" ]; then
			echo "$t excluded" >>"$LOG_DIR/$lane.results"
			continue
		fi
		if [ ! -x "$dir/$t.t" ]; then
			echo "$t missing" >>"$LOG_DIR/$lane.results"
			continue
		fi
		rc=0
		run_one "$dir" "$out/$t.log" "$@" "./$t.t" || rc=$?
		echo "$t $(classify $rc)" >>"$LOG_DIR/$lane.results"
	done
}

mkdir -p "$LOG_DIR"
if [ "$NATIVE" = auto ]; then
	if (cd "$TEST_DIR" && timeout 10 ./nop.t >/dev/null 2>&1); then NATIVE=yes; else NATIVE=no; fi
fi

# The lanes run one after the other: tests bind fixed socket addresses
# (abstract unix names, loopback ports), which two concurrent lanes would
# fight over.
start=$(date +%s)
if [ "$NATIVE" = yes ]; then
	run_lane native "$TEST_DIR"
fi
run_lane ringport "$TEST_DIR" "$RINGPORT" run --
elapsed=$(($(date +%s) - start))

# --- 5. report -------------------------------------------------------------
declare -A NRES RRES
if [ "$NATIVE" = yes ]; then
	while read -r t r; do NRES[$t]=$r; done <"$LOG_DIR/native.results"
fi
while read -r t r; do RRES[$t]=$r; done <"$LOG_DIR/ringport.results"

# What each test that timed out under ringport was doing (stderr, before
# the table, so that the summary stays the last line).
for t in "${TESTS[@]}"; do
	if [ "${RRES[$t]:-}" = timeout ] && [ -f "$LOG_DIR/ringport/$t.log" ]; then
		echo "liburing-suite: $t timed out under ringport; end of its log:" >&2
		tail -n 80 "$LOG_DIR/ringport/$t.log" >&2
	fi
done

passed=0 failed=0 skipped=0
printf '%-28s %-14s %s\n' test native ringport
for t in "${TESTS[@]}"; do
	n=${NRES[$t]:-n/a}
	r=${RRES[$t]:-missing}
	case "$r" in
	pass) passed=$((passed + 1)) ;;
	skip|excluded) skipped=$((skipped + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
	printf '%-28s %-14s %s\n' "$t" "$n" "$r"
done
say "logs in $LOG_DIR; ${elapsed}s"
echo "$passed passed, $failed failed, $skipped skipped"

floor=0
[ -f "$FLOOR_FILE" ] && floor=$(grep -o '^[0-9]\+' "$FLOOR_FILE" | head -n1)
floor=${floor:-0}
if [ ${#ONLY[@]} -gt 0 ]; then
	exit 0 # a subset says nothing about the floor
fi
if [ "$passed" -lt "$floor" ]; then
	say "FAIL: $passed passed under ringport, below the floor of $floor ($FLOOR_FILE)"
	exit 1
fi
if [ "$UPDATE_FLOOR" = 1 ] && [ "$passed" -gt "$floor" ]; then
	echo "$passed" >"$FLOOR_FILE"
	say "floor raised from $floor to $passed"
fi
exit 0
