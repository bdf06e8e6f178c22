#!/usr/bin/env bash
# Runs every tests/interop/NN-name/run.sh in order. Exit 77 from a test means its peer could
# not be installed: SKIP. Ends with `N passed, N failed, N skipped`; exits 1 on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${FACTEUR_BIN:-}" ]; then
    (cd "$root" && cargo build -q -p facteur) || exit 1
    export FACTEUR_BIN="$root/target/debug/facteur"
fi
# The tests drive clients with python3 and `runuser`; install python3 where it is missing.
. "$here/lib.sh"
apt_need python3 python3 || { echo "python3 cannot be installed"; exit 1; }
passed=0 failed=0 skipped=0
for test in "$here"/[0-9][0-9]-*/run.sh; do
    name=$(basename "$(dirname "$test")")
    log=$(mktemp)
    start=$(date +%s)
    timeout 900 bash "$test" >"$log" 2>&1
    status=$?
    took=$(($(date +%s) - start))
    case $status in
        0) passed=$((passed + 1)); echo "PASS $name (${took}s)" ;;
        77) skipped=$((skipped + 1)); echo "SKIP $name: $(tail -1 "$log")" ;;
        *) failed=$((failed + 1)); echo "FAIL $name (exit $status, ${took}s)"; sed 's/^/    /' "$log" | tail -40 ;;
    esac
    rm -f "$log"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
