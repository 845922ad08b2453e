#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the service on its embedded
# defaults (LMDB in ./data, a demo secret) with a ready-to-paste curl command.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../tests/setup.sh"
cd "$AC_ROOT"

ac_install_deps
ac_build build

# A demo secret only: set your own AGENTCORE_JWT_SECRET (>= 16 bytes) for anything real.
export AGENTCORE_JWT_SECRET="${AGENTCORE_JWT_SECRET:-agentcore-demo-secret-change-me}"
LISTEN="${AGENTCORE_LISTEN:-127.0.0.1:8001}"
TOKEN=$(build/agentcore token --sub demo \
    --perms training:start,training:view,training:cancel,training:evaluate,data:export --ttl 86400)

cat <<MSG

agentcore is starting on http://$LISTEN (data in ./data).

Dashboard: open http://$LISTEN/ui/ and paste the demo token:

  $TOKEN

Or try, from another terminal:

  curl -s http://$LISTEN/api/v1/jsonrpc \\
    -H "Authorization: Bearer $TOKEN" \\
    -H "Content-Type: application/json" \\
    -d '{"jsonrpc":"2.0","method":"training.get_status","params":{"job_id":"550e8400-e29b-41d4-a716-446655440000"},"id":"1"}'

(that job does not exist yet: the answer is a -32001 Not Found error; see README "Quick start"
for starting a job). Stop the server with Ctrl-C.

MSG
exec build/agentcore serve --listen "$LISTEN" --data ./data
