#!/usr/bin/env bash
# with-cluster.sh: run a command with the test clusters up, and stop afterwards
# only the clusters this invocation started (also when the command fails).
#
# Usage: scripts/with-cluster.sh [--clusters N] [--auth] [--fault] [--brokers [CLUSTER=]M]...
#                                -- COMMAND [ARGS...]
# The command runs with the clusters' addresses exported (scripts/rocketmq.sh env).
# --brokers is passed to `rocketmq.sh up` (e.g. --brokers a=2: two master brokers in
# cluster a). A broker that up adds to a cluster that was already running is left
# running afterwards, like that cluster.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rmq="$here/rocketmq.sh"
run_dir="${RMQKIT_ROCKETMQ_DIR:-$here/../.rocketmq}/run"

clusters=1 auth=0 fault=0
brokers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clusters) clusters="$2"; shift 2 ;;
    --brokers) brokers+=(--brokers "$2"); shift 2 ;;
    --auth) auth=1; shift ;;
    --fault) fault=1; shift ;;
    --) shift; break ;;
    *) echo "with-cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "with-cluster.sh: no command after --" >&2; exit 2; }

wanted=(a)
[ "$clusters" -ge 2 ] && wanted+=(b)
[ "$auth" = 1 ] && wanted+=(auth)
[ "$fault" = 1 ] && wanted+=(fault)

# A cluster counts as running when its pid files exist; rocketmq.sh up checks
# liveness itself and restarts nothing that serves.
already=()
for c in "${wanted[@]}"; do
  [ -f "$run_dir/$c/broker.pid" ] && already+=("$c")
done

up_args=(--clusters "$clusters")
[ "$auth" = 1 ] && up_args+=(--auth)
[ "$fault" = 1 ] && up_args+=(--fault)
up_args+=("${brokers[@]+"${brokers[@]}"}")
"$rmq" up "${up_args[@]}"

started=()
for c in "${wanted[@]}"; do
  case " ${already[*]-} " in *" $c "*) ;; *) started+=("$c") ;; esac
done
cleanup() {
  if [ ${#started[@]} -gt 0 ]; then
    # --now: the stores are deleted anyway, and a graceful broker stop takes ~15 s.
    "$rmq" down --now "${started[@]}" >/dev/null || echo "with-cluster.sh: down ${started[*]} failed" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

eval "$("$rmq" env)"
"$@"
