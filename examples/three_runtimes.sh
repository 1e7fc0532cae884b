#!/usr/bin/env bash
# One cluster, three runtimes: a CLI node (src/cli.ts) each on Deno, Bun and
# Node (through tsx's loader), on loopback with memory storage. The Deno node
# starts the cluster; the Bun and Node nodes join it (Node through the Bun
# node first: any member will do). One write goes through each node, every
# key is read back through the other two, and all three must report the same
# head. The nodes are stopped by PID (SIGTERM, then SIGKILL if one hangs)
# however the script ends. Every wait is bounded. Exit status 0 on success.
#
# Run: examples/three_runtimes.sh   (needs curl)
#
# Where the runtimes are, with their defaults:
#   DENO=deno  BUN=bun  NODE=node
#   TSX_LOADER=tsx   what `node --import` loads: the package name (tsx in the
#                    repo's node_modules) or a file: URL of tsx's loader.mjs
#   WAIT_S=30        how long to wait for each node to start or join, seconds

set -euo pipefail

DENO=${DENO:-deno}
BUN=${BUN:-bun}
NODE=${NODE:-node}
TSX_LOADER=${TSX_LOADER:-tsx}
WAIT_S=${WAIT_S:-30}

cd "$(dirname "$0")/.."

for tool in "$DENO" "$BUN" "$NODE" curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "three_runtimes.sh: cannot find $tool (see the comment at the top)" >&2
    exit 2
  fi
done

# A secured cluster, as by default: every node gets the same secret.
WATERCRAFT_SECRET=${WATERCRAFT_SECRET:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
export WATERCRAFT_SECRET

LOGS=$(mktemp -d)
IDS=()
PIDS=()

# Stops every node still running: SIGTERM, at most 5 s to exit, then SIGKILL.
stop_all() {
  local i pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    pid=${PIDS[$i]}
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    local code=0
    wait "$pid" 2>/dev/null || code=$?
    echo "stopped ${IDS[$i]} (pid $pid): exit $code"
  done
  PIDS=()
  IDS=()
}

on_exit() {
  local code=$?
  stop_all
  if [ "$code" -ne 0 ]; then
    for log in "$LOGS"/*.log; do
      [ -e "$log" ] && { echo "--- $(basename "$log")"; tail -n 20 "$log"; } >&2
    done
  fi
  rm -rf "$LOGS"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Three free loopback ports, held together so that they differ.
read -r PORT_DENO PORT_BUN PORT_NODE < <("$DENO" eval '
  const ls = [0, 1, 2].map(() => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  console.log(ls.map((l) => l.addr.port).join(" "));
  for (const l of ls) l.close();
')
URL_DENO=http://127.0.0.1:$PORT_DENO
URL_BUN=http://127.0.0.1:$PORT_BUN
URL_NODE=http://127.0.0.1:$PORT_NODE

# start ID PORT JOIN COMMAND...: runs one CLI node in the background.
start() {
  local id=$1 port=$2 join=$3
  shift 3
  local args=(--id "$id" --host 127.0.0.1 --port "$port" --advertise "http://127.0.0.1:$port"
    --storage memory --heartbeat-ms 50 --election-ms 500)
  [ -n "$join" ] && args+=(--join "$join")
  "$@" "${args[@]}" >"$LOGS/$id.log" 2>&1 &
  PIDS+=("$!")
  IDS+=("$id")
  echo "started $id (pid $!): $* on port $port"
}

# wait_line ID PATTERN: waits for a line of the node's output, failing early if it exits.
wait_line() {
  local id=$1 pattern=$2 i pid=""
  for i in "${!IDS[@]}"; do [ "${IDS[$i]}" = "$id" ] && pid=${PIDS[$i]}; done
  for _ in $(seq 1 $((WAIT_S * 10))); do
    grep -q -- "$pattern" "$LOGS/$id.log" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$id exited before printing '$pattern'" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "$id did not print '$pattern' within $WAIT_S s" >&2
  return 1
}

# get URL / put URL JSON: one request with a deadline; fails on a non-2xx answer.
get() { curl -sS --fail --max-time 10 "$1"; }
put() { curl -sS --fail --max-time 10 -X PUT -H 'content-type: application/json' -d "$2" "$1"; }

start n-deno "$PORT_DENO" "" "$DENO" run -A src/cli.ts
wait_line n-deno "watercraft listening on"
start n-bun "$PORT_BUN" "$URL_DENO" "$BUN" src/cli.ts
start n-node "$PORT_NODE" "$URL_BUN,$URL_DENO" "$NODE" --import "$TSX_LOADER" src/cli.ts
wait_line n-bun "watercraft joined the cluster"
wait_line n-node "watercraft joined the cluster"

# Joiners start as learners; the host promotes each once it has caught up.
voters=0
for _ in $(seq 1 $((WAIT_S * 10))); do
  voters=$(get "$URL_DENO/v1/members" | grep -o '"voter":true' | wc -l | tr -d ' ')
  [ "$voters" -eq 3 ] && break
  sleep 0.1
done
[ "$voters" -eq 3 ] || { echo "only $voters voters after $WAIT_S s" >&2; exit 1; }
echo "members: $(get "$URL_DENO/v1/members")"

NAMES=(deno bun node)
URLS=("$URL_DENO" "$URL_BUN" "$URL_NODE")
for i in 0 1 2; do
  echo "PUT ${NAMES[$i]} /v1/kv/${NAMES[$i]}: $(put "${URLS[$i]}/v1/kv/${NAMES[$i]}" \
    "{\"value\":\"written through ${NAMES[$i]}\"}")"
done
for i in 0 1 2; do
  for j in 0 1 2; do
    [ "$i" -eq "$j" ] && continue
    answer=$(get "${URLS[$j]}/v1/kv/${NAMES[$i]}")
    echo "GET ${NAMES[$j]} /v1/kv/${NAMES[$i]}: $answer"
    case $answer in
      *"\"written through ${NAMES[$i]}\""*) ;;
      *) echo "${NAMES[$j]} does not return the write made through ${NAMES[$i]}" >&2; exit 1 ;;
    esac
  done
done

# The head of the latest applied entry: equal on all three once they applied the same index.
heads=()
for _ in $(seq 1 $((WAIT_S * 10))); do
  heads=()
  for url in "${URLS[@]}"; do heads+=("$(get "$url/v1/head")"); done
  [ "${heads[0]}" = "${heads[1]}" ] && [ "${heads[1]}" = "${heads[2]}" ] && break
  sleep 0.1
done
for i in 0 1 2; do echo "head ${NAMES[$i]}: ${heads[$i]}"; done
if [ "${heads[0]}" != "${heads[1]}" ] || [ "${heads[1]}" != "${heads[2]}" ]; then
  echo "the heads differ after $WAIT_S s" >&2
  exit 1
fi
echo "agreed: one head on deno, bun and node"
stop_all
echo "ok"
