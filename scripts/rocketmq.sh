#!/usr/bin/env bash
# rocketmq.sh: a real Apache RocketMQ test cluster (name server + one master broker
# per cluster, or several with --brokers) for rmqkit's integration tests, run from
# Maven Central jars with plain `java -cp`: no Docker, no downloads outside Maven
# Central.
#
# Usage (works from any directory):
#   scripts/rocketmq.sh up [--clusters N] [--auth] [--fault] [--brokers [CLUSTER=]M]...
#                          [--timeout S]
#                                 N = 0, 1 (default: cluster a) or 2 (a and b);
#                                 --auth adds cluster "auth" (authentication on);
#                                 --fault adds cluster "fault", which fault tests
#                                 kill and restart without disturbing the others;
#                                 --brokers M: M master brokers (1 to 4, default 1)
#                                 in every cluster started, --brokers a=M only in
#                                 cluster a (repeatable; the last word per cluster
#                                 wins). The brokers share the cluster's name and
#                                 name server, so created topics get queues on each.
#                                 Starts only what is not running yet (a running
#                                 cluster with fewer brokers gets the missing ones
#                                 added; extra ones are left running); returns once
#                                 every requested broker is routed by its name server.
#   scripts/rocketmq.sh status    what runs where; exit 1 if a started process died
#   scripts/rocketmq.sh env       `eval "$(scripts/rocketmq.sh env)"` exports the
#                                 addresses of the running clusters (below)
#   scripts/rocketmq.sh down [CLUSTER...] [--keep-logs] [--now]
#                                 stops the processes of its pid files (TERM, then
#                                 KILL after RMQKIT_STOP_TIMEOUT s; --now: KILL at
#                                 once, as the stores are deleted anyway; a broker's
#                                 graceful shutdown takes ~13 s) and deletes the
#                                 clusters' run dirs (stores, logs unless --keep-logs)
#   scripts/rocketmq.sh kill-broker  CLUSTER [--broker B] [--signal KILL|TERM]
#                                 (default TERM); every broker of the cluster, or
#                                 only B: its number (1, 2, ...) or name (broker-a2)
#   scripts/rocketmq.sh start-broker CLUSTER [--broker B]   same config, SAME store;
#                                 every broker of the cluster that is not running
#   scripts/rocketmq.sh restart-broker CLUSTER [--broker B] [--signal KILL|TERM]
#   scripts/rocketmq.sh stop-namesrv  CLUSTER [--signal KILL|TERM]
#   scripts/rocketmq.sh start-namesrv CLUSTER
#   scripts/rocketmq.sh admin CLUSTER SUBCOMMAND [ARGS...]
#                                 runs mqadmin (MQAdminStartup) against CLUSTER's name
#                                 server (-n is added; credentials too for "auth"),
#                                 e.g. `admin a consumerProgress -g my-group`
#   scripts/rocketmq.sh install   only download the jars (cached)
#
# Clusters (CLUSTER is a, b, auth or fault):
#   a     RmqkitA    name server 127.0.0.1:9876,  broker broker-a    127.0.0.1:10911
#   b     RmqkitB    name server 127.0.0.1:19876, broker broker-b    127.0.0.1:20911
#   fault RmqkitFault name server 127.0.0.1:24876, broker broker-fault 127.0.0.1:25911
#   auth  RmqkitAuth name server 127.0.0.1:29876, broker broker-auth 127.0.0.1:30911
#         authentication + authorization on (RocketMQ 5.3 "ACL 2.0"); super user
#         access key rmqkit-ak, secret key rmqkit-sk-12345678. Requests are signed
#         exactly like the 4.x ACL (HMAC-SHA1 over the sorted ext fields + body),
#         which is what rocketmq-client-go v2 does with primitive.Credentials.
#   A broker listens on L (clients), L-2 (VIP channel) and L+1 (HA).
#   With --brokers M, broker k (2..M) of a cluster is named <first broker's name>k
#   (broker-a2, broker-a3, ...) and listens on L+10*(k-1): broker-a2 on 10921
#   (10919, 10922).
#   All default ports are below 32768, outside Linux's ephemeral range, where an
#   outgoing connection could hold a port a broker is about to bind.
#
# Environment:
#   RMQKIT_NAMESRV_PORT, RMQKIT_BROKER_PORT                cluster a ports
#   RMQKIT_NAMESRV_PORT_B, RMQKIT_BROKER_PORT_B            cluster b ports
#   RMQKIT_NAMESRV_PORT_AUTH, RMQKIT_BROKER_PORT_AUTH      cluster auth ports
#   RMQKIT_NAMESRV_PORT_FAULT, RMQKIT_BROKER_PORT_FAULT    cluster fault ports
#     (read when a cluster starts fresh; afterwards the ports saved in its run dir
#     are used by every command)
#   RMQKIT_ROCKETMQ_DIR    cache and run dir (default: <repo>/.rocketmq, git-ignored)
#   RMQKIT_START_TIMEOUT   seconds to wait for a process to serve (default 120)
#   RMQKIT_STOP_TIMEOUT    seconds between TERM and KILL (default 20)
#   JAVA, MVN              the java and mvn commands (default: java / mvn on PATH)
#
# Exported by `env` (only for clusters that run):
#   RMQKIT_NAMESRV, RMQKIT_BROKER, RMQKIT_BROKERS, RMQKIT_CLUSTER       cluster a
#   RMQKIT_NAMESRV_B, RMQKIT_BROKER_B, RMQKIT_BROKERS_B, RMQKIT_CLUSTER_B   cluster b
#   RMQKIT_AUTH_NAMESRV, RMQKIT_AUTH_BROKER, RMQKIT_AUTH_BROKERS, RMQKIT_AUTH_CLUSTER,
#   RMQKIT_ACCESS_KEY, RMQKIT_SECRET_KEY                                cluster auth
#   RMQKIT_FAULT_NAMESRV, RMQKIT_FAULT_BROKER, RMQKIT_FAULT_BROKERS,
#   RMQKIT_FAULT_CLUSTER                                                cluster fault
#   *_BROKER is the first master broker, *_BROKERS every master broker of the
#   cluster (comma-separated, first one first).
#
# Layout under .rocketmq/:
#   dist/<version>/lib/*.jar     the jars (.complete marks a finished download)
#   run/<cluster>/ports          ports and broker count of the running cluster
#   run/<cluster>/{namesrv,broker,broker2,...}.pid
#   run/<cluster>/<role>/        per process (role namesrv, broker, broker2, ...):
#                                <role>.conf, stdout.log, home/ (user.home;
#                                logs in home/logs/rocketmqlogs), rocketmq-home/, tmp/,
#                                store/ (broker)
#
# Facts learned running it (RocketMQ 5.3.3, Java 17, 2 cores):
#   - `bindAddress=127.0.0.1` (namesrv.conf, broker.conf) binds the name server and the
#     broker's L and L-2 ports to loopback. The HA port (L+1) is bound to 0.0.0.0 by
#     DefaultHAService (new InetSocketAddress(port)): there is no setting for it.
#   - The name server's own client dials <first non-loopback address>:port every 3 s
#     unless namesrv.conf says scanAvailableNameSrv=false (set below). Don't set it in
#     broker.conf: the broker only registers with name servers that scan found.
#   - The broker's registration at start is often skipped on a busy box (see
#     wait_route); without the nudge there, the route appears only 10 s later.
#   - The JDK 17 --add-opens flags below are needed (Netty, mmap cleaner).
#   - Typical times on 2 cores: cached `up` ~5 s for one cluster, a broker's graceful
#     shutdown ~13 s (fixed sleeps in its services), so `down` ~15 s (`down --now` <1 s).
#   - RSS after 30 s idle: name server ~170 MB, broker ~300-350 MB. Stores are sparse
#     (242 MB apparent, ~100 KB used; the auth broker's RocksDB adds ~80 MB).
#   - kill-broker/stop-namesrv remove the pid file: `status` then says "stopped" (exit
#     0); a pid file whose process died says "DEAD" (exit 1).
#   - A second master (--brokers a=2) costs what the first does: ~340 MB RSS after
#     start, ~470 MB after a make test run, ~5% of one core when idle; it boots
#     beside the first (fresh `up` of cluster a with 2 brokers ~14 s, all four
#     clusters with a=2 ~50-60 s on a loaded box). Adding it to a running cluster
#     (`up --brokers a=2` over a 1-broker cluster a) takes ~10 s; topics created
#     before keep their queues on broker-a only.
set -euo pipefail

# The one pin: scripts/rocketmq/pom.xml gets it as -Drocketmq.version. A new version
# downloads into its own dist/<version> dir.
ROCKETMQ_VERSION=5.3.3

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
POM="$SCRIPT_DIR/rocketmq/pom.xml"
RMQ_DIR=${RMQKIT_ROCKETMQ_DIR:-$REPO_ROOT/.rocketmq}
DIST_DIR="$RMQ_DIR/dist/$ROCKETMQ_VERSION"
LIB_DIR="$DIST_DIR/lib"
RUN_ROOT="$RMQ_DIR/run"
START_TIMEOUT=${RMQKIT_START_TIMEOUT:-120}
STOP_TIMEOUT=${RMQKIT_STOP_TIMEOUT:-20}
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}

ACCESS_KEY=rmqkit-ak
SECRET_KEY=rmqkit-sk-12345678
ALL_CLUSTERS=(a b auth fault)

JDK_OPENS=(
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
)
# Low footprint on a 2-core box: serial GC (no parallel GC threads), no hsperfdata
# files in /tmp, stack traces kept.
JVM_COMMON=(
  -XX:+UseSerialGC
  -XX:+PerfDisableSharedMem
  -XX:-OmitStackTraceInFastThrow
  -Dfile.encoding=UTF-8
  # The broker's logback file uses a deprecated element, so logback dumps ~150 lines
  # of its own status into stdout at every start; silence that (the shaded class).
  -Dlogback.statusListenerClass=org.apache.rocketmq.logging.ch.qos.logback.core.status.NopStatusListener
)
NAMESRV_JVM=(-Xms64m -Xmx256m -XX:MaxDirectMemorySize=128m)
BROKER_JVM=(-Xms256m -Xmx512m -XX:MaxDirectMemorySize=512m)
# mqadmin is a short-lived JVM: C1 only starts faster.
TOOLS_JVM=(-Xmx128m -XX:TieredStopAtLevel=1)

# ---------------------------------------------------------------------------------
# helpers

log() { printf 'rocketmq.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# Serializes commands that change state, so parallel callers (several test
# packages) do not start the same cluster twice.
take_lock() {
  mkdir -p "$RMQ_DIR"
  exec 9>"$RMQ_DIR/.lock"
  if ! flock -w "$((START_TIMEOUT * 3))" 9; then
    die "another rocketmq.sh holds $RMQ_DIR/.lock"
  fi
}

normalize_cluster() {
  case "${1:-}" in
    a | A) echo a ;;
    b | B) echo b ;;
    auth | AUTH | Auth) echo auth ;;
    fault | FAULT | Fault) echo fault ;;
    *) die "unknown cluster '${1:-}' (want a, b, auth or fault)" ;;
  esac
}

# cluster_def CLUSTER sets C_NAME, C_BROKER, C_AUTH, NS_PORT, BR_PORT and N_BROKERS
# (the number of master brokers). Ports and count come from the run dir when the
# cluster has one (so later commands see what `up` used), else from the environment
# (count 1).
cluster_def() {
  local c=$1
  case "$c" in
    a) C_NAME=RmqkitA C_BROKER=broker-a C_AUTH=0
      NS_PORT=${RMQKIT_NAMESRV_PORT:-9876} BR_PORT=${RMQKIT_BROKER_PORT:-10911} ;;
    b) C_NAME=RmqkitB C_BROKER=broker-b C_AUTH=0
      NS_PORT=${RMQKIT_NAMESRV_PORT_B:-19876} BR_PORT=${RMQKIT_BROKER_PORT_B:-20911} ;;
    auth) C_NAME=RmqkitAuth C_BROKER=broker-auth C_AUTH=1
      NS_PORT=${RMQKIT_NAMESRV_PORT_AUTH:-29876} BR_PORT=${RMQKIT_BROKER_PORT_AUTH:-30911} ;;
    fault) C_NAME=RmqkitFault C_BROKER=broker-fault C_AUTH=0
      NS_PORT=${RMQKIT_NAMESRV_PORT_FAULT:-24876} BR_PORT=${RMQKIT_BROKER_PORT_FAULT:-25911} ;;
    *) die "unknown cluster '$c'" ;;
  esac
  N_BROKERS=1
  local f="$RUN_ROOT/$c/ports" k v
  if [[ -f "$f" ]]; then
    while IFS='=' read -r k v; do
      case "$k" in
        NS_PORT) NS_PORT=$v ;;
        BR_PORT) BR_PORT=$v ;;
        BROKERS) N_BROKERS=$v ;;
      esac
    done <"$f"
  fi
  [[ "$NS_PORT" =~ ^[0-9]+$ && "$BR_PORT" =~ ^[0-9]+$ ]] || die "bad ports for cluster $c: $NS_PORT $BR_PORT"
  [[ "$N_BROKERS" =~ ^[1-9]$ ]] || die "bad broker count for cluster $c: $N_BROKERS"
}

write_ports() {
  printf 'NS_PORT=%s\nBR_PORT=%s\nBROKERS=%s\n' "$NS_PORT" "$BR_PORT" "$N_BROKERS" >"$RUN_ROOT/$1/ports"
}

# Broker k of a cluster (1-based) runs as role "broker" (k = 1) or "broker<k>".
# These need cluster_def first.
broker_role() { if (($1 == 1)); then echo broker; else echo "broker$1"; fi; }
# broker_index ROLE: k of role broker<k>.
broker_index() {
  local k=${1#broker}
  echo "${k:-1}"
}
# broker_roles: the roles of the cluster's N_BROKERS brokers.
broker_roles() {
  local k
  for ((k = 1; k <= N_BROKERS; k++)); do broker_role "$k"; done
}
# broker_name ROLE: broker-a, broker-a2, ...
broker_name() {
  local k
  k=$(broker_index "$1")
  if ((k == 1)); then echo "$C_BROKER"; else echo "$C_BROKER$k"; fi
}
# broker_port ROLE: the client port L of the broker (the others are L-2 and L+1).
broker_port() {
  local k
  k=$(broker_index "$1")
  echo $((BR_PORT + 10 * (k - 1)))
}
# broker_addrs: every broker's address, comma-separated, first broker first.
broker_addrs() {
  local role out=""
  for role in $(broker_roles); do out+="${out:+,}127.0.0.1:$(broker_port "$role")"; done
  echo "$out"
}
# select_brokers SELECTOR: the roles SELECTOR names (a number, a broker name or a
# role; "" for all of them).
select_brokers() {
  local sel=$1 role
  if [[ -z "$sel" ]]; then
    broker_roles
    return 0
  fi
  for role in $(broker_roles); do
    if [[ "$sel" == "$role" || "$sel" == "$(broker_name "$role")" || "$sel" == "$(broker_index "$role")" ]]; then
      echo "$role"
      return 0
    fi
  done
  die "cluster has no broker '$sel' (it has: $(broker_roles | while read -r r; do printf '%s ' "$(broker_name "$r")"; done))"
}

role_dir() { echo "$RUN_ROOT/$1/$2"; }
pid_file() { echo "$RUN_ROOT/$1/$2.pid"; }

read_pid() {
  local f
  f=$(pid_file "$1" "$2")
  [[ -f "$f" ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$f")
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

# is_ours PID CLUSTER ROLE: the process is the java we started for CLUSTER/ROLE
# (guards against a recycled pid; a zombie has an empty cmdline and fails too).
is_ours() {
  local pid=$1 home
  home="-Duser.home=$(role_dir "$2" "$3")/home"
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$home"
}

# alive CLUSTER ROLE: prints the pid when its pid file names a live process of ours.
alive() {
  local pid
  pid=$(read_pid "$1" "$2") || return 1
  is_ours "$pid" "$1" "$2" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

broker_ports() { echo "$1 $(($1 - 2)) $(($1 + 1))"; }

require_free_port() {
  local port=$1 what=$2
  if port_open "$port"; then
    local who=""
    who=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -3 || true)
    die "port $port ($what) is already in use by a process not started from $RUN_ROOT${who:+: $who}. Stop it or pick other ports (see the RMQKIT_*_PORT variables at the top of $0)."
  fi
}

java_major() {
  "$JAVA" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

jvm_flags() {
  local major
  major=$(java_major)
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot run '$JAVA -version'"
  JVM_BASE=("${JVM_COMMON[@]}")
  if ((major >= 9)); then
    JVM_BASE+=("${JDK_OPENS[@]}")
  fi
}

# ---------------------------------------------------------------------------------
# jars

ensure_dist() {
  if [[ -f "$DIST_DIR/.complete" ]]; then
    return 0
  fi
  command -v "$MVN" >/dev/null || die "maven ($MVN) not found"
  mkdir -p "$DIST_DIR"
  rm -rf "$DIST_DIR/lib.tmp"
  log "downloading RocketMQ $ROCKETMQ_VERSION jars from Maven Central into $LIB_DIR ..."
  local t0
  t0=$(now)
  if ! "$MVN" -B -q -Dstyle.color=never -f "$POM" \
    -Drocketmq.version="$ROCKETMQ_VERSION" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$DIST_DIR/lib.tmp" \
    >"$DIST_DIR/mvn.log" 2>&1; then
    tail -n 40 "$DIST_DIR/mvn.log" >&2 || true
    die "maven failed (full log: $DIST_DIR/mvn.log)"
  fi
  local jar
  for jar in rocketmq-namesrv rocketmq-broker rocketmq-tools; do
    [[ -f "$DIST_DIR/lib.tmp/$jar-$ROCKETMQ_VERSION.jar" ]] || die "maven finished but $jar-$ROCKETMQ_VERSION.jar is missing"
  done
  rm -rf "$LIB_DIR"
  mv "$DIST_DIR/lib.tmp" "$LIB_DIR"
  printf 'version=%s\ndate=%s\n' "$ROCKETMQ_VERSION" "$(date -u +%FT%TZ)" >"$DIST_DIR/.complete"
  log "downloaded $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIB_DIR" | cut -f1)) in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------------------------
# configuration

# write_configs CLUSTER BROKERS: a fresh run dir's ports file and configs, for
# BROKERS master brokers.
write_configs() {
  local c=$1 role
  cluster_def "$c"
  N_BROKERS=$2
  local base="$RUN_ROOT/$c" ns
  ns=$(role_dir "$c" namesrv)
  mkdir -p "$ns/home" "$ns/rocketmq-home" "$ns/tmp" \
    "$base/tools/home" "$base/tools/rocketmq-home/conf" "$base/tools/tmp"
  write_ports "$c"

  cat >"$ns/namesrv.conf" <<EOF
listenPort=$NS_PORT
bindAddress=127.0.0.1
kvConfigPath=$ns/home/namesrv/kvConfig.json
# Otherwise the name server's own client connects every 3 s to
# <first non-loopback address>:listenPort (itself), which is refused since it
# listens on loopback only.
scanAvailableNameSrv=false
EOF

  for role in $(broker_roles); do
    write_broker_conf "$c" "$role"
  done
  if [[ "$C_AUTH" == 1 ]]; then
    # mqadmin signs its requests with ${rocketmq.home.dir}/conf/tools.yml.
    printf 'accessKey: %s\nsecretKey: %s\n' "$ACCESS_KEY" "$SECRET_KEY" \
      >"$base/tools/rocketmq-home/conf/tools.yml"
  fi
}

# write_broker_conf CLUSTER ROLE: a fresh dir and <role>.conf for one broker (after
# cluster_def CLUSTER).
write_broker_conf() {
  local c=$1 role=$2 br port
  br=$(role_dir "$c" "$role")
  port=$(broker_port "$role")
  rm -rf "$br"
  mkdir -p "$br/home" "$br/rocketmq-home" "$br/tmp" "$br/store/commitlog"
  cat >"$br/$role.conf" <<EOF
brokerClusterName=$C_NAME
brokerName=$(broker_name "$role")
brokerId=0
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=127.0.0.1:$NS_PORT
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
bindAddress=127.0.0.1
listenPort=$port
haListenPort=$((port + 1))
storePathRootDir=$br/store
storePathCommitLog=$br/store/commitlog
# Small files: mapped files are sparse, but smaller ones start and recover faster.
mappedFileSizeCommitLog=104857600
mappedFileSizeConsumeQueue=600000
mappedFileSizeTimerLog=10485760
maxHashSlotNum=50000
maxIndexNum=200000
autoCreateTopicEnable=true
autoCreateSubscriptionGroup=true
# Queues of auto-created topics (the Go producer asks for 4).
defaultTopicQueueNums=4
enablePropertyFilter=true
# Fewer "broker busy" answers on a loaded 2-core box.
waitTimeMillsInSendQueue=1000
osPageCacheBusyTimeOutMills=3000
# The 5.x timer wheel (delivery-time messages) is compared byte by byte and forced
# to disk at every flush: every 5 s instead of every second (idle CPU).
timerFlushIntervalMs=5000
# Re-register every 10 s (the minimum) so a restarted name server learns the
# broker quickly.
registerNameServerPeriod=10000
EOF

  if [[ "$C_AUTH" == 1 ]]; then
    cat >>"$br/$role.conf" <<EOF
# RocketMQ 5.3 authentication/authorization (ACL 2.0). The init user is a SUPER user
# (all permissions); the broker's own requests use the same credentials.
authenticationEnabled=true
authenticationProvider=org.apache.rocketmq.auth.authentication.provider.DefaultAuthenticationProvider
authenticationMetadataProvider=org.apache.rocketmq.auth.authentication.provider.LocalAuthenticationMetadataProvider
initAuthenticationUser={"username":"$ACCESS_KEY","password":"$SECRET_KEY"}
innerClientAuthenticationCredentials={"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}
authorizationEnabled=true
authorizationProvider=org.apache.rocketmq.auth.authorization.provider.DefaultAuthorizationProvider
authorizationMetadataProvider=org.apache.rocketmq.auth.authorization.provider.LocalAuthorizationMetadataProvider
EOF
  fi
}

# ---------------------------------------------------------------------------------
# processes

# start_proc CLUSTER ROLE: launches the JVM in the background (own session, so a
# Ctrl-C or the caller's process group does not reach it), writes the pid file and
# sets START_OFFSET to the size of stdout.log before this start.
start_proc() {
  local c=$1 role=$2 dir main conf
  dir=$(role_dir "$c" "$role")
  local -a heap
  case "$role" in
    namesrv) main=org.apache.rocketmq.namesrv.NamesrvStartup heap=("${NAMESRV_JVM[@]}") ;;
    broker*) main=org.apache.rocketmq.broker.BrokerStartup heap=("${BROKER_JVM[@]}") ;;
  esac
  conf="$dir/$role.conf"
  [[ -f "$conf" ]] || die "$conf is missing: run 'up' first"
  # The JVM gets a copy: an admin config update (see wait_route) rewrites the file
  # it was started with.
  cp "$conf" "$dir/$role.run.conf"
  conf="$dir/$role.run.conf"
  mkdir -p "$dir/tmp"
  touch "$dir/stdout.log"
  START_OFFSET=$(stat -c %s "$dir/stdout.log")
  printf '==== %s start %s\n' "$(date -u +%FT%TZ)" "$role" >>"$dir/stdout.log"
  (
    cd "$dir"
    exec setsid nohup "$JAVA" "${heap[@]}" "${JVM_BASE[@]}" \
      -Duser.home="$dir/home" \
      -Drocketmq.home.dir="$dir/rocketmq-home" \
      -Djava.io.tmpdir="$dir/tmp" \
      -Drmq.logback.configurationFile="rmq.$role.logback.xml" \
      -cp "$LIB_DIR/*" "$main" -c "$conf" \
      >>"$dir/stdout.log" 2>&1 </dev/null 9>&-
  ) &
  disown $! 2>/dev/null || true
  local pid=$!
  echo "$pid" >"$(pid_file "$c" "$role")"
  STARTED+=("$c/$role")
}

# tail_logs CLUSTER ROLE: the end of the process's stdout and its rocketmqlogs log.
tail_logs() {
  local dir f
  dir=$(role_dir "$1" "$2")
  for f in "$dir/stdout.log" "$dir/home/logs/rocketmqlogs/$2.log"; do
    if [[ -f "$f" ]]; then
      printf -- '----- last 40 lines of %s\n' "$f" >&2
      tail -n 40 "$f" >&2
    else
      printf -- '----- %s: no such file\n' "$f" >&2
    fi
  done
}

fail_proc() {
  local c=$1 role=$2 msg=$3
  log "error: cluster $c $role: $msg"
  tail_logs "$c" "$role"
  cleanup_started
  exit 1
}

# wait_boot CLUSTER ROLE OFFSET DEADLINE: waits for the boot line in the part of
# stdout.log written since OFFSET.
wait_boot() {
  local c=$1 role=$2 off=$3 deadline=$4 dir pattern
  dir=$(role_dir "$c" "$role")
  case "$role" in
    namesrv) pattern='The Name Server boot success' ;;
    broker*) pattern='The broker\[.*\] boot success' ;;
  esac
  while :; do
    if tail -c "+$((off + 1))" "$dir/stdout.log" 2>/dev/null | grep -q -- "$pattern"; then
      return 0
    fi
    if ! alive "$c" "$role" >/dev/null; then
      fail_proc "$c" "$role" "the process exited before printing '$pattern'"
    fi
    if (($(date +%s) >= deadline)); then
      fail_proc "$c" "$role" "no '$pattern' within ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
}

wait_port() {
  local c=$1 role=$2 port=$3 deadline=$4
  until port_open "$port"; do
    alive "$c" "$role" >/dev/null || fail_proc "$c" "$role" "the process exited"
    (($(date +%s) < deadline)) || fail_proc "$c" "$role" "port $port not answering within ${START_TIMEOUT}s"
    sleep 0.2
  done
}

# tool_cmd CLUSTER ARGS...: sets TOOL_CMD to MQAdminStartup ARGS with the tools
# logback, a per-cluster user.home, and for "auth" the credentials in its
# rocketmq-home/conf/tools.yml.
tool_cmd() {
  local c=$1
  shift
  local t="$RUN_ROOT/$c/tools"
  mkdir -p "$t/home" "$t/rocketmq-home/conf" "$t/tmp"
  TOOL_CMD=("$JAVA" "${TOOLS_JVM[@]}" "${JVM_BASE[@]}"
    -Duser.home="$t/home"
    -Drocketmq.home.dir="$t/rocketmq-home"
    -Djava.io.tmpdir="$t/tmp"
    -Drmq.logback.configurationFile=rmq.tools.logback.xml
    -cp "$LIB_DIR/*" org.apache.rocketmq.tools.command.MQAdminStartup "$@")
}

# mqadmin_until CLUSTER OUT CHECK ARGS...: runs mqadmin ARGS in the background into
# OUT; as soon as `CHECK OUT` succeeds, kills it (our own child): the tool prints its
# answer after ~1 s and then idles ~2.5 s in Netty's graceful shutdown.
mqadmin_until() {
  local c=$1 out=$2 check=$3 tp
  shift 3
  tool_cmd "$c" "$@"
  : >"$out"
  # A simple command in the background: $! is the java process itself.
  "${TOOL_CMD[@]}" >"$out" 2>&1 9>&- &
  tp=$!
  while kill -0 "$tp" 2>/dev/null; do
    if "$check" "$out"; then
      kill "$tp" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$tp" 2>/dev/null || true
}

# broker_listed FILE ROLE: FILE (clusterList output) lists the current cluster's
# broker ROLE at 127.0.0.1:L with a version, which mqadmin only gets by asking the
# broker itself.
broker_listed() {
  awk -v cn="$C_NAME" -v bn="$(broker_name "$2")" -v addr="127.0.0.1:$(broker_port "$2")" \
    '$1 == cn && $2 == bn && $4 == addr && $5 ~ /^V[0-9]/ { ok = 1 } END { exit !ok }' "$1" 2>/dev/null
}

# shellcheck disable=SC2317 # called through mqadmin_until
# route_listed FILE: FILE lists every broker of ROUTE_ROLES.
route_listed() {
  local role
  for role in "${ROUTE_ROLES[@]}"; do
    broker_listed "$1" "$role" || return 1
  done
}

# shellcheck disable=SC2317 # called through mqadmin_until
config_updated() { grep -q 'update broker config success' "$1" 2>/dev/null; }

# wait_route CLUSTER DEADLINE [ROLE...]: waits until `clusterList` on the cluster's
# name server lists its brokers ROLE... (default: all of them; mqadmin exits 0
# whatever happened, so its output is read).
#
# A broker registers once at start and then every registerNameServerPeriod, the
# first time 10 s after start. The registration at start is skipped silently when
# the broker's client has not yet marked the name server available (an asynchronous
# connect started a moment before; BrokerOuterAPI.registerBrokerAll only uses
# getAvailableNameSrvList()), which happened in most starts on a busy 2-core box.
# So each broker not listed yet is asked to register at once first: an update of
# brokerPermission (to 6, the master's default) makes it call registerBrokerAll and
# answer after it.
wait_route() {
  local c=$1 deadline=$2 out nudge tries=0 role
  shift 2
  cluster_def "$c"
  ROUTE_ROLES=("$@")
  if ((${#ROUTE_ROLES[@]} == 0)); then
    mapfile -t ROUTE_ROLES < <(broker_roles)
  fi
  mkdir -p "$RUN_ROOT/$c/tools"
  out="$RUN_ROOT/$c/tools/clusterList.out"
  nudge="$RUN_ROOT/$c/tools/updateBrokerConfig.out"
  : >"$out"
  while :; do
    if ((tries % 3 == 0)); then
      for role in "${ROUTE_ROLES[@]}"; do
        broker_listed "$out" "$role" && continue
        mqadmin_until "$c" "$nudge" config_updated updateBrokerConfig \
          -b "127.0.0.1:$(broker_port "$role")" -k brokerPermission -v 6
      done
    fi
    tries=$((tries + 1))
    mqadmin_until "$c" "$out" route_listed clusterList -n "127.0.0.1:$NS_PORT"
    if route_listed "$out"; then
      return 0
    fi
    for role in "${ROUTE_ROLES[@]}"; do
      alive "$c" "$role" >/dev/null || fail_proc "$c" "$role" "the broker $(broker_name "$role") exited"
    done
    alive "$c" namesrv >/dev/null || fail_proc "$c" namesrv "the name server exited"
    if (($(date +%s) >= deadline)); then
      log "last clusterList output ($tries tries):"
      cat "$out" >&2
      log "last updateBrokerConfig output:"
      cat "$nudge" >&2
      for role in "${ROUTE_ROLES[@]}"; do
        broker_listed "$out" "$role" ||
          fail_proc "$c" "$role" "name server 127.0.0.1:$NS_PORT did not route broker $(broker_name "$role") (127.0.0.1:$(broker_port "$role")) within ${START_TIMEOUT}s"
      done
      fail_proc "$c" namesrv "name server 127.0.0.1:$NS_PORT did not route the brokers within ${START_TIMEOUT}s"
    fi
    sleep 1
  done
}

# stop_procs SIGNAL CLUSTER/ROLE...: signals the processes of the pid files, waits up
# to STOP_TIMEOUT s, then KILLs what is left and waits for it; removes the pid files.
stop_procs() {
  local sig=$1 item c role pid
  shift
  local -a pids=() items=()
  for item in "$@"; do
    c=${item%%/*} role=${item#*/}
    if pid=$(alive "$c" "$role"); then
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$pid") items+=("$item")
      log "cluster $c: sent $sig to $role (pid $pid)"
    elif pid=$(read_pid "$c" "$role"); then
      log "cluster $c: pid $pid of its $role pid file is not a running $role of this cluster; pid file removed"
      rm -f "$(pid_file "$c" "$role")"
    fi
  done
  ((${#pids[@]} > 0)) || return 0
  local deadline=$(($(date +%s) + STOP_TIMEOUT)) i left
  while :; do
    left=0
    for i in "${!pids[@]}"; do
      c=${items[$i]%%/*} role=${items[$i]#*/}
      if is_ours "${pids[$i]}" "$c" "$role"; then
        left=1
      fi
    done
    ((left)) || break
    if (($(date +%s) >= deadline)); then
      for i in "${!pids[@]}"; do
        c=${items[$i]%%/*} role=${items[$i]#*/}
        if is_ours "${pids[$i]}" "$c" "$role"; then
          log "cluster $c: $role (pid ${pids[$i]}) still up after ${STOP_TIMEOUT}s: KILL"
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      deadline=$(($(date +%s) + 3600))
    fi
    sleep 0.2
  done
  for item in "${items[@]}"; do
    rm -f "$(pid_file "${item%%/*}" "${item#*/}")"
  done
}

STARTED=()
# On a failed start, stop what this invocation started (logs stay for reading).
cleanup_started() {
  if ((${#STARTED[@]} > 0)); then
    log "stopping what this command started: ${STARTED[*]}"
    STOP_TIMEOUT=5 stop_procs TERM "${STARTED[@]}" || true
    STARTED=()
  fi
}

start_and_wait() {
  # start_and_wait CLUSTER ROLE: start one process and wait for its boot line.
  local c=$1 role=$2 deadline
  deadline=$(($(date +%s) + START_TIMEOUT))
  cluster_def "$c"
  if [[ "$role" == namesrv ]]; then
    require_free_port "$NS_PORT" "cluster $c name server"
  else
    local p
    for p in $(broker_ports "$(broker_port "$role")"); do require_free_port "$p" "cluster $c broker $(broker_name "$role")"; done
  fi
  start_proc "$c" "$role"
  wait_boot "$c" "$role" "$START_OFFSET" "$deadline"
}

# ---------------------------------------------------------------------------------
# commands

cmd_install() {
  take_lock
  ensure_dist
  echo "$LIB_DIR"
}

cmd_up() {
  local n=1 auth=0 fault=0 arg
  local -A nbr=()
  while (($# > 0)); do
    case "$1" in
      --clusters) n=${2:-}; shift 2 || die "--clusters needs a number" ;;
      --clusters=*) n=${1#*=}; shift ;;
      --auth) auth=1; shift ;;
      --fault) fault=1; shift ;;
      --brokers | --brokers=*)
        if [[ "$1" == --brokers ]]; then
          arg=${2:-}
          shift 2 || die "--brokers needs a count"
        else
          arg=${1#*=}
          shift
        fi
        if [[ "$arg" == *=* ]]; then
          nbr[$(normalize_cluster "${arg%%=*}")]=${arg#*=}
          arg=${arg#*=}
        else
          local k
          for k in "${ALL_CLUSTERS[@]}"; do nbr[$k]=$arg; done
        fi
        [[ "$arg" =~ ^[1-4]$ ]] || die "--brokers: the count must be 1 to 4, got '$arg'"
        ;;
      --timeout) START_TIMEOUT=${2:-}; shift 2 || die "--timeout needs seconds" ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  [[ "$n" =~ ^[012]$ ]] || die "--clusters must be 0, 1 or 2"
  [[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "bad timeout '$START_TIMEOUT'"
  local -a want=()
  ((n >= 1)) && want+=(a)
  ((n >= 2)) && want+=(b)
  ((auth)) && want+=(auth)
  ((fault)) && want+=(fault)
  ((${#want[@]} > 0)) || die "nothing to start (--clusters 0 without --auth or --fault)"

  local t0
  t0=$(now)
  take_lock
  ensure_dist
  jvm_flags

  # Which processes each cluster needs (need_br holds CLUSTER/ROLE items).
  local c p role need_ns=() need_br=() to_check=() ok
  for c in "${want[@]}"; do
    local ns_up=0 br_up=0 all_up=1 wanted=${nbr[$c]:-1}
    cluster_def "$c"
    alive "$c" namesrv >/dev/null && ns_up=1
    for role in $(broker_roles); do
      if alive "$c" "$role" >/dev/null; then br_up=1; else all_up=0; fi
    done
    if ((!ns_up && !br_up)); then
      # Fresh start: new store, new logs.
      rm -rf "${RUN_ROOT:?}/$c"
      write_configs "$c" "$wanted"
      need_ns+=("$c")
      for role in $(broker_roles); do need_br+=("$c/$role"); done
      to_check+=("$c")
      continue
    fi
    if ((wanted > N_BROKERS)); then
      # More brokers wanted in a running cluster: add the missing ones (fresh
      # stores); the running ones keep serving.
      local k
      for ((k = N_BROKERS + 1; k <= wanted; k++)); do
        role=$(broker_role "$k")
        write_broker_conf "$c" "$role"
      done
      log "cluster $c runs $N_BROKERS broker(s): adding $((wanted - N_BROKERS)) to make $wanted"
      N_BROKERS=$wanted
      write_ports "$c"
      all_up=0
    elif ((wanted < N_BROKERS)) && [[ -n "${nbr[$c]:-}" ]]; then
      log "cluster $c runs $N_BROKERS brokers, $wanted asked for: leaving them all running"
    fi
    if ((ns_up && all_up)); then
      ok=1
      for p in "$NS_PORT" $(broker_addrs | tr ',' '\n' | sed 's/.*://'); do port_open "$p" || ok=0; done
      if ((ok)); then
        log "cluster $c already running (name server 127.0.0.1:$NS_PORT, broker(s) $(broker_addrs))"
        continue
      fi
      to_check+=("$c")
      continue
    fi
    ((ns_up)) || need_ns+=("$c")
    for role in $(broker_roles); do
      alive "$c" "$role" >/dev/null || need_br+=("$c/$role")
    done
    to_check+=("$c")
  done

  trap 'cleanup_started; exit 130' INT TERM
  # Name servers first (a broker that finds none retries only after 10 s).
  local -a offsets=()
  local deadline=$(($(date +%s) + START_TIMEOUT))
  for c in "${need_ns[@]+"${need_ns[@]}"}"; do
    cluster_def "$c"
    require_free_port "$NS_PORT" "cluster $c name server"
    start_proc "$c" namesrv
    offsets+=("$START_OFFSET")
  done
  local i=0
  for c in "${need_ns[@]+"${need_ns[@]}"}"; do
    wait_boot "$c" namesrv "${offsets[$i]}" "$deadline"
    i=$((i + 1))
  done
  ((${#need_ns[@]} == 0)) || log "name server(s) ${need_ns[*]} booted at +$(elapsed "$t0") s"
  offsets=()
  deadline=$(($(date +%s) + START_TIMEOUT))
  local item
  for item in "${need_br[@]+"${need_br[@]}"}"; do
    c=${item%%/*} role=${item#*/}
    cluster_def "$c"
    for p in $(broker_ports "$(broker_port "$role")"); do require_free_port "$p" "cluster $c broker $(broker_name "$role")"; done
    start_proc "$c" "$role"
    offsets+=("$START_OFFSET")
  done
  i=0
  for item in "${need_br[@]+"${need_br[@]}"}"; do
    wait_boot "${item%%/*}" "${item#*/}" "${offsets[$i]}" "$deadline"
    i=$((i + 1))
  done
  ((${#need_br[@]} == 0)) || log "broker(s) ${need_br[*]} booted at +$(elapsed "$t0") s"
  deadline=$(($(date +%s) + START_TIMEOUT))
  for c in "${to_check[@]+"${to_check[@]}"}"; do
    cluster_def "$c"
    wait_port "$c" namesrv "$NS_PORT" "$deadline"
    for role in $(broker_roles); do
      wait_port "$c" "$role" "$(broker_port "$role")" "$deadline"
    done
    wait_route "$c" "$deadline"
    log "cluster $c ($C_NAME) serving at +$(elapsed "$t0") s: name server 127.0.0.1:$NS_PORT, $N_BROKERS master broker(s) $(broker_addrs)"
  done
  trap - INT TERM
  STARTED=()
  if ((${#to_check[@]} > 0)); then
    log "up: done in $(elapsed "$t0") s; for the addresses: eval \"\$($0 env)\""
  fi
  if ((auth)); then
    log "auth cluster: RMQKIT_AUTH_NAMESRV, RMQKIT_ACCESS_KEY=$ACCESS_KEY, RMQKIT_SECRET_KEY=$SECRET_KEY (see env)"
  fi
}

# clusters_with_run_dir prints the clusters that have a run dir.
clusters_with_run_dir() {
  local c
  for c in "${ALL_CLUSTERS[@]}"; do
    [[ -d "$RUN_ROOT/$c" ]] && echo "$c"
  done
  return 0
}

cmd_down() {
  local keep_logs=0 sig=TERM arg
  local -a cl=()
  for arg in "$@"; do
    case "$arg" in
      --keep-logs) keep_logs=1 ;;
      --now) sig=KILL ;;
      *) cl+=("$(normalize_cluster "$arg")") ;;
    esac
  done
  local t0
  t0=$(now)
  take_lock
  if ((${#cl[@]} == 0)); then
    mapfile -t cl < <(clusters_with_run_dir)
  fi
  if ((${#cl[@]} == 0)); then
    log "down: nothing to stop"
    return 0
  fi
  local c f role
  local -a brokers=() namesrvs=()
  for c in "${cl[@]}"; do
    # The brokers of the ports file and of any pid file.
    cluster_def "$c"
    for role in $(broker_roles) $(for f in "$RUN_ROOT/$c"/broker*.pid; do [[ -f "$f" ]] && basename "$f" .pid; done | sort -u); do
      case " ${brokers[*]-} " in *" $c/$role "*) ;; *) brokers+=("$c/$role") ;; esac
    done
    namesrvs+=("$c/namesrv")
  done
  # Brokers first: they unregister from their name servers on the way out.
  stop_procs "$sig" "${brokers[@]}"
  stop_procs "$sig" "${namesrvs[@]}"
  for c in "${cl[@]}"; do
    if ((keep_logs)); then
      rm -rf "${RUN_ROOT:?}/$c/"broker*/store "${RUN_ROOT:?}/$c/"*/tmp
      log "cluster $c stopped; logs kept in $RUN_ROOT/$c"
    else
      rm -rf "${RUN_ROOT:?}/$c"
      log "cluster $c stopped and removed"
    fi
  done
  rmdir "$RUN_ROOT" 2>/dev/null || true
  log "down: done in $(elapsed "$t0") s"
}

cmd_status() {
  local c role pid bad=0 any=0 state ports
  for c in "${ALL_CLUSTERS[@]}"; do
    [[ -d "$RUN_ROOT/$c" ]] || continue
    any=1
    cluster_def "$c"
    echo "cluster $c ($C_NAME), run dir $RUN_ROOT/$c"
    for role in namesrv $(broker_roles); do
      local p0=$NS_PORT
      if [[ "$role" == namesrv ]]; then
        ports="127.0.0.1:$NS_PORT"
      else
        p0=$(broker_port "$role")
        ports="127.0.0.1:$p0 (+$((p0 - 2)) vip, $((p0 + 1)) ha) $(broker_name "$role")"
      fi
      if pid=$(alive "$c" "$role"); then
        state="alive, pid $pid"
        port_open "$p0" || state="$state, port $p0 NOT answering"
      elif pid=$(read_pid "$c" "$role"); then
        state="DEAD (pid file says $pid)"
        bad=1
      else
        state="stopped"
      fi
      printf '  %-8s %-50s %s\n' "$role" "$ports" "$state"
    done
  done
  ((any)) || echo "no cluster running (run dir $RUN_ROOT is empty)"
  return "$bad"
}

cmd_env() {
  local c suffix
  for c in "${ALL_CLUSTERS[@]}"; do
    alive "$c" namesrv >/dev/null || continue
    cluster_def "$c"
    case "$c" in
      a)
        echo "export RMQKIT_NAMESRV=127.0.0.1:$NS_PORT"
        echo "export RMQKIT_BROKER=127.0.0.1:$BR_PORT"
        echo "export RMQKIT_BROKERS=$(broker_addrs)"
        echo "export RMQKIT_CLUSTER=$C_NAME"
        ;;
      b)
        suffix=_B
        echo "export RMQKIT_NAMESRV$suffix=127.0.0.1:$NS_PORT"
        echo "export RMQKIT_BROKER$suffix=127.0.0.1:$BR_PORT"
        echo "export RMQKIT_BROKERS$suffix=$(broker_addrs)"
        echo "export RMQKIT_CLUSTER$suffix=$C_NAME"
        ;;
      auth)
        echo "export RMQKIT_AUTH_NAMESRV=127.0.0.1:$NS_PORT"
        echo "export RMQKIT_AUTH_BROKER=127.0.0.1:$BR_PORT"
        echo "export RMQKIT_AUTH_BROKERS=$(broker_addrs)"
        echo "export RMQKIT_AUTH_CLUSTER=$C_NAME"
        echo "export RMQKIT_ACCESS_KEY=$ACCESS_KEY"
        echo "export RMQKIT_SECRET_KEY=$SECRET_KEY"
        ;;
      fault)
        echo "export RMQKIT_FAULT_NAMESRV=127.0.0.1:$NS_PORT"
        echo "export RMQKIT_FAULT_BROKER=127.0.0.1:$BR_PORT"
        echo "export RMQKIT_FAULT_BROKERS=$(broker_addrs)"
        echo "export RMQKIT_FAULT_CLUSTER=$C_NAME"
        ;;
    esac
  done
}

# parse_role_args ARGS...: sets SIGNAL (--signal, default TERM) and BROKER_SEL
# (--broker, default "": every broker).
parse_role_args() {
  SIGNAL=TERM BROKER_SEL=""
  while (($# > 0)); do
    case "$1" in
      --signal) SIGNAL=${2:-}; shift 2 || die "--signal needs a name" ;;
      --signal=*) SIGNAL=${1#*=}; shift ;;
      --broker) BROKER_SEL=${2:-}; shift 2 || die "--broker needs a number or name" ;;
      --broker=*) BROKER_SEL=${1#*=}; shift ;;
      *) die "unknown argument '$1'" ;;
    esac
  done
  SIGNAL=${SIGNAL#SIG}
  case "$SIGNAL" in
    TERM | KILL | INT) ;;
    *) die "signal must be TERM or KILL" ;;
  esac
}

require_run_dir() {
  [[ -f "$RUN_ROOT/$1/ports" ]] || die "cluster $1 has no run dir: start it with 'up' first"
}

# role_list KIND CLUSTER: sets ROLES to namesrv, or to the brokers BROKER_SEL names.
role_list() {
  local kind=$1 c=$2 sel
  ROLES=()
  if [[ "$kind" == namesrv ]]; then
    [[ -z "$BROKER_SEL" ]] || die "--broker is for the broker commands"
    ROLES=(namesrv)
    return 0
  fi
  cluster_def "$c"
  sel=$(select_brokers "$BROKER_SEL") || exit 1
  read -r -a ROLES <<<"$(echo $sel)"
}

# alive_brokers CLUSTER: the roles of the cluster's brokers that run.
alive_brokers() {
  local role
  for role in $(broker_roles); do
    alive "$1" "$role" >/dev/null && echo "$role"
  done
  return 0
}

cmd_stop_role() {
  local kind=$1 c role
  c=$(normalize_cluster "${2:-}")
  shift 2 || true
  parse_role_args "$@"
  require_run_dir "$c"
  role_list "$kind" "$c"
  take_lock
  local -a items=()
  for role in "${ROLES[@]}"; do
    if ! alive "$c" "$role" >/dev/null; then
      log "cluster $c: $role is not running"
      rm -f "$(pid_file "$c" "$role")"
      continue
    fi
    items+=("$c/$role")
  done
  ((${#items[@]} == 0)) || stop_procs "$SIGNAL" "${items[@]}"
}

cmd_start_role() {
  local kind=$1 c pid role
  c=$(normalize_cluster "${2:-}")
  shift 2 || true
  parse_role_args "$@"
  require_run_dir "$c"
  role_list "$kind" "$c"
  local t0
  t0=$(now)
  take_lock
  ensure_dist
  jvm_flags
  trap 'cleanup_started; exit 130' INT TERM
  local started=0
  for role in "${ROLES[@]}"; do
    if pid=$(alive "$c" "$role"); then
      log "cluster $c: $role already running (pid $pid)"
      continue
    fi
    start_and_wait "$c" "$role"
    started=1
    log "cluster $c: $role booted at +$(elapsed "$t0") s"
  done
  if ((!started)); then
    trap - INT TERM
    return 0
  fi
  # Wait for the routes when both ends run: a broker registers at start, and a
  # restarted name server learns of a broker at its next register (<= 10 s).
  local -a up=()
  mapfile -t up < <(alive_brokers "$c")
  if alive "$c" namesrv >/dev/null && ((${#up[@]} > 0)); then
    wait_route "$c" $(($(date +%s) + START_TIMEOUT)) "${up[@]}"
  fi
  trap - INT TERM
  STARTED=()
  for role in "${ROLES[@]}"; do
    log "cluster $c: $role started (pid $(read_pid "$c" "$role")) in $(elapsed "$t0") s"
  done
}

cmd_admin() {
  local c
  c=$(normalize_cluster "${1:-}")
  shift || true
  (($# > 0)) || die "admin: give an mqadmin subcommand, e.g. clusterList"
  [[ -f "$LIB_DIR/../.complete" ]] || die "jars not installed: run 'up' or 'install' first"
  cluster_def "$c"
  jvm_flags
  local sub=$1
  shift
  tool_cmd "$c" "$sub" -n "127.0.0.1:$NS_PORT" "$@"
  exec "${TOOL_CMD[@]}" 9>&-
}

main() {
  local cmd=${1:-}
  shift || true
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    install) cmd_install ;;
    kill-broker) cmd_stop_role broker "$@" ;;
    start-broker) cmd_start_role broker "$@" ;;
    restart-broker)
      cmd_stop_role broker "$@"
      # Release the lock between the two halves (both take it).
      exec 9>&-
      cmd_start_role broker "$@"
      ;;
    stop-namesrv) cmd_stop_role namesrv "$@" ;;
    start-namesrv) cmd_start_role namesrv "$@" ;;
    admin) cmd_admin "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
