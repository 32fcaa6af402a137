#!/usr/bin/env bash
# Bazel build and tests, offline (issue 8): `bazel test --config=offline //...` must run one py_test
# per test file (tests/**/test_*.py, tests/**/*_test.py), the same tests as `make test`.
# Installs Debian's bazel-bootstrap (Bazel 4.2) when no working bazel is found, and the project's
# .venv (make install) when it is missing: the Bazel Python toolchain runs .venv/bin/python.
# Fails when Bazel fails, or when the summary "Executed N out of M tests" has N == 0 or N != the
# number of test files. Options after the script name go to `bazel test` (e.g. --config=local).
# BAZEL=/path/to/bazel picks the binary (default: bazel on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

bazel_works() {
  # A real Bazel prints "bazel <version>"; a broken wrapper (npm's @bazel/bazel without its execute
  # bit, ...) prints nothing and may still exit 0.
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  [[ $out == bazel\ * ]]
}

BAZEL=${BAZEL:-$(command -v bazel || true)}
if [ -z "$BAZEL" ] || ! bazel_works "$BAZEL"; then
  echo "bazel_test.sh: installing Debian's bazel-bootstrap (apt)"
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q bazel-bootstrap
  BAZEL=/usr/bin/bazel
  bazel_works "$BAZEL" || { echo "bazel_test.sh: $BAZEL --version does not answer 'bazel ...'" >&2; exit 1; }
fi
echo "bazel_test.sh: $("$BAZEL" --version) ($BAZEL)"

[ -x .venv/bin/python ] || make install

expected=$(find tests \( -name 'test_*.py' -o -name '*_test.py' \) -not -path '*/__pycache__/*' | sort -u | wc -l)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --nocache_test_results: every test runs, so "Executed N" counts them all.
set +e
"$BAZEL" test --config=offline --nocache_test_results "$@" //... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "${CI:-}" = true ]; then
  # CI runs in a fresh clone each time: free its output base (one per workspace path) and server.
  "$BAZEL" clean --expunge >/dev/null 2>&1 || true
  "$BAZEL" shutdown >/dev/null 2>&1 || true
fi
summary=$(grep -E 'Executed [0-9]+ out of [0-9]+ tests?' "$log" | tail -n 1 || true)
if [ "$rc" -ne 0 ]; then
  echo "bazel_test.sh: FAILED: bazel test exited with $rc${summary:+ ($summary)}" >&2
  exit "$rc"
fi
if [[ ! $summary =~ Executed\ ([0-9]+)\ out\ of\ ([0-9]+)\ test ]]; then
  echo "bazel_test.sh: FAILED: no 'Executed N out of M tests' line in Bazel's output" >&2
  exit 1
fi
executed=${BASH_REMATCH[1]}
if [ "$executed" -eq 0 ] || [ "$executed" -ne "$expected" ]; then
  echo "bazel_test.sh: FAILED: Bazel executed $executed tests, tests/ has $expected test files" >&2
  exit 1
fi
echo "bazel_test.sh: OK, $executed py_test targets executed, one per test file ($summary)"
