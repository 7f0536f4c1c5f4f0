#!/bin/sh
# Runs each libFuzzer binary (FUZZ_JOBS at a time, default one per core) for a bounded time on a /tmp copy of its seed
# corpus (the repository stays clean) and prints one line per target.
# usage: run.sh SECONDS RSS_MB build-fuzz/fuzz_NAME...   (corpus: tests/fuzz/corpus/NAME/)
# On a crash, leak or timeout the /tmp directory with the log and the
# crashing input is kept and named; exit status 1.
set -u
secs=$1; rss=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
status=0
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# One target: its report line(s) on stdout, its exit status 0 or 1.
run_one() {
	bin=$1
	name=$(basename "$bin"); name=${name#fuzz_}
	work=$(mktemp -d /tmp/am-fuzz-"$name"-XXXXXX)
	mkdir "$work/corpus"
	cp "$here/corpus/$name/"* "$work/corpus/"
	TMPDIR="$work" "$bin" -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=25 -print_final_stats=1 \
	    -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
	cov=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	units=$(ls "$work/corpus" | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz $name: ok, ${runs:-?} runs in ${secs}s, ${eps:-?} exec/s, coverage ${cov:-?}, corpus $units"
		rm -rf "$work"
		return 0
	fi
	echo "fuzz $name: FAILED (exit $rc), details in $work/log; input:" $(ls "$work" | grep -E '^(crash|leak|timeout|oom)-')
	grep -E 'ERROR|SUMMARY|property violated|runtime error' "$work/log" | head -n 5
	return 1
}

# FUZZ_JOBS targets at a time (each libFuzzer run uses one core); reports in target order.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
out=$(mktemp -d /tmp/am-fuzz-reports-XXXXXX)
i=0
pids=""
for bin in "$@"; do
	i=$((i + 1))
	run_one "$bin" >"$out/$i" 2>&1 &
	pids="$pids $!"
	if [ $((i % jobs)) -eq 0 ]; then
		for pid in $pids; do wait "$pid" || status=1; done
		pids=""
	fi
done
for pid in $pids; do wait "$pid" || status=1; done
k=1
while [ "$k" -le "$i" ]; do cat "$out/$k"; k=$((k + 1)); done
rm -rf "$out"
exit $status
