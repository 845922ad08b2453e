#!/bin/sh
# Runs the Python SDK's tests (pytest, Debian's python3-pytest) against the real server.
# Env: AGENTCORE_BIN (default <repo>/build/agentcore), AC_SOURCE_DIR (default <repo>).
# Exits non-zero when a test fails, when pytest cannot run, or when no test was collected
# (pytest's exit code 5), so that a broken collection never passes as green.
here=$(cd "$(dirname "$0")" && pwd)
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -p no:cacheprovider -q -rs "$here" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "run.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
