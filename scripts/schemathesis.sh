#!/usr/bin/env bash
# Schema-driven fuzzing of the HTTP API (SPEC §8): start `timedb api` on a fresh SQLite
# database, then let schemathesis (PyPI) generate requests from the server's own
# /openapi.json and check that no answer is a 5xx and every answer matches the document.
#
#   scripts/schemathesis.sh                 # bounded run (the test suite's): ~25 examples per operation
#   MAX_EXAMPLES=1000 scripts/schemathesis.sh   # a longer run (see docs/errors.md)
#   scripts/schemathesis.sh --show-trace    # extra arguments go to `schemathesis run`
#
# schemathesis is installed into target/schemathesis-venv on first use (pinned below).
# The server is the debug binary (built here if missing) and is stopped on exit, even on
# failure. Exits non-zero when schemathesis finds a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=3.39.16
# schemathesis 3.x calls Hypothesis internals that later releases removed (`many.more`).
HYPOTHESIS_VERSION=6.122.3
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
VENV=target/schemathesis-venv

if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx "hypothesis==$HYPOTHESIS_VERSION" \
  || ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION"
fi

cargo build --quiet -p timedb-server --bin timedb

WORK=$(mktemp -d -t timedb-schemathesis.XXXXXX)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh database: the first run creates the schema with users and prints the first
# admin key (`API Key: <key>`), then `serving http://ADDR`.
target/debug/timedb --dsn "sqlite://$WORK/fuzz.sqlite3" api --port 0 \
  --failed-auth-limit 100000/minute >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

ADDR=
for _ in $(seq 1 100); do
  ADDR=$(grep -o 'serving http://[^ ]*' "$WORK/server.out" | head -n1 | sed 's/^serving //') || true
  [ -n "$ADDR" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "timedb api exited early:" >&2
    cat "$WORK/server.out" "$WORK/server.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$ADDR" ]; then
  echo "timedb api did not print its address within 10 s" >&2
  cat "$WORK/server.out" "$WORK/server.err" >&2
  exit 1
fi
KEY=$(grep -o 'API Key: [^ ]*' "$WORK/server.out" | head -n1 | sed 's/^API Key: //')
if [ -z "$KEY" ]; then
  echo "timedb api did not print a first admin key" >&2
  cat "$WORK/server.out" >&2
  exit 1
fi
echo "== schemathesis against $ADDR ($MAX_EXAMPLES examples per operation)"

# Both key headers are fixed: left to generate the `Authorization` the document's bearer
# scheme describes, schemathesis sends control bytes in it, which the HTTP parser (hyper)
# refuses with a bare 400 before timedb sees the request (docs/errors.md).
status=0
"$VENV/bin/schemathesis" run "$ADDR/openapi.json" \
  --base-url "$ADDR" \
  -H "X-API-Key: $KEY" \
  -H "Authorization: Bearer $KEY" \
  --checks not_a_server_error,response_schema_conformance \
  --hypothesis-max-examples "$MAX_EXAMPLES" \
  --hypothesis-derandomize \
  --hypothesis-suppress-health-check all \
  --hypothesis-deadline 30000 \
  --experimental openapi-3.1 \
  --validate-schema true \
  --no-color \
  "$@" || status=$?

if [ "$status" -ne 0 ]; then
  echo "== schemathesis failed (exit $status); server log tail:" >&2
  tail -n 50 "$WORK/server.err" >&2 || true
fi
exit "$status"
