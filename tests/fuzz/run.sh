#!/bin/sh
# Runs each libFuzzer binary for a bounded time on a /tmp copy of its seed
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
for bin in "$@"; do
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
	else
		echo "fuzz $name: FAILED (exit $rc), details in $work/log; input:" $(ls "$work" | grep -E '^(crash|leak|timeout|oom)-')
		grep -E 'ERROR|SUMMARY|property violated|runtime error' "$work/log" | head -n 5
		status=1
	fi
done
exit $status
