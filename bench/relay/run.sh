#!/usr/bin/env bash
# Relay benchmark: MESSAGES messages injected by CLIENTS parallel SMTP clients and relayed to
# Postfix's smtp-sink on loopback, facteur against Postfix, on the same machine, one at a time.
#
#   facteur   the `submission` role with `plaintext_auth = true` (AUTH PLAIN in cleartext on
#             loopback; no TLS on either leg), 250 once the message is committed to the queue;
#             `queue.transports` sends relay.test to the sink; the queue service, woken by
#             each submission, delivers.
#   postfix   smtpd on its own port, `mynetworks = 127.0.0.0/8` (no AUTH), `relay_domains =
#             relay.test`, `transport_maps = relay.test=smtp:[127.0.0.1]:SINK`; Postfix's
#             defaults otherwise (fsync'd queue files, 20 parallel deliveries per destination,
#             connection cache on demand).
# Both are fed by bench/loadgen's `relay` mode: connect, EHLO, (AUTH PLAIN for facteur), then
# PER_CONN times MAIL FROM:<uN@bench.test> RCPT TO:<sink@relay.test> DATA (SIZE bytes), QUIT.
# smtp-sink (-c) counts what it received; end to end is from the start of injection until the
# sink has counted every message the load generator had accepted (bounded by TIMEOUT).
# Reported per server: messages, injection msg/s (250 after DATA), end-to-end relay msg/s,
# injection p50/p99, server CPU ms per message (machine busy time over the end-to-end run minus
# the load generator's and smtp-sink's own), disk flushes per message (the block device's flush
# counter, /sys/class/block/DEV/stat field 16), connections the sink saw, queue left over.
#
#   bench/relay/run.sh                        # 20,000 messages, 50 clients, 1 per connection
#   SERVERS=facteur MESSAGES=5000 bench/relay/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-20000}
DURATION=${DURATION:-120}      # most seconds of injection
TIMEOUT=${TIMEOUT:-600}        # most seconds to wait for the sink after injection
CLIENTS=${CLIENTS:-50}
PER_CONN=${PER_CONN:-1}
SIZE=${SIZE:-4096}
USERS=${USERS:-10}
SERVERS=${SERVERS:-postfix facteur}
FACTEUR_QUEUE=${FACTEUR_QUEUE:-}   # extra [queue] lines for facteur, e.g. "max_parallel = 64"
pass=secret
rcpt=sink@relay.test
users=()
for i in $(seq "$USERS"); do users+=("u$i@bench.test"); done

if ! command -v postfix >/dev/null || ! command -v smtp-sink >/dev/null || [ ! -x /usr/bin/time ]; then
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 postfix time >/dev/null
fi
bin=${FACTEUR_BIN:-$root/target/release/facteur}
[ -n "${FACTEUR_BIN:-}" ] || (cd "$root" && cargo build --release -q -p facteur)
loadgen=$root/bench/loadgen/target/release/facteur-loadgen
(cd "$root/bench/loadgen" && cargo build --release -q)

work=$(mktemp -d -t facteur-relay-bench.XXXXXX)
chmod 755 "$work"
pids=()
sink_pid=
cleanup() {
    for p in "${pids[@]}" $sink_pid; do kill "$p" 2>/dev/null || true; done
    [ -d "$work/postfix/etc" ] && postfix -c "$work/postfix/etc" stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

dev=$(basename "$(findmnt -no SOURCE -T "$work" | sed 's/\[.*//')")
flushes() { [ -r "/sys/class/block/$dev/stat" ] && awk '{print $16}' "/sys/class/block/$dev/stat" || echo 0; }
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
proc_jiffies() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# A fresh smtp-sink for each server: its counter line is `sess=N quit=N mesg=N` after a CR.
start_sink() {
    sink=$(free_port)
    smtp-sink -u nobody -c "127.0.0.1:$sink" 1024 >"$work/sink.out" 2>"$work/sink.err" &
    sink_pid=$!
    wait_port "$sink"
}
sink_field() { tail -c 80 "$work/sink.out" | tr '\r' '\n' | tail -1 | sed -n "s/.*$1=\([0-9]*\).*/\1/p" | grep . || echo 0; }
stop_sink() { kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; sink_pid=; }

# measure NAME PORT PASSWORD|- LEFT_CMD: injects, waits for the sink, prints one result line.
# LEFT_CMD prints how many messages the server still has queued.
measure() {
    local name=$1 port=$2 password=$3 left_cmd=$4 j0 s0 t0 t1 j1 s1 f0 f1 res got want deadline sess0
    sess0=$(sink_field sess)
    f0=$(flushes); j0=$(busy_jiffies); s0=$(proc_jiffies "$sink_pid"); t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$work/loadgen.time" \
        "$loadgen" relay "127.0.0.1:$port" "$password" "$CLIENTS" "$MESSAGES" "$DURATION" "$PER_CONN" "$SIZE" "$rcpt" \
        "${users[@]}" >"$work/loadgen.out" 2>"$work/loadgen.err" ||
        echo "$name: load generator reported errors: $(head -3 "$work/loadgen.err")" >&2
    res=$(cat "$work/loadgen.out")
    want=$(printf '%s\n' "$res" | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
    [ -n "$want" ] || { echo "$name: no result: $(cat "$work/loadgen.err")" >&2; return 1; }
    got=0; deadline=$(( $(date +%s) + TIMEOUT ))
    while [ "$got" -lt "$want" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        got=$(sink_field mesg); [ "$got" -ge "$want" ] || sleep 0.1
    done
    t1=$(date +%s.%N); j1=$(busy_jiffies); s1=$(proc_jiffies "$sink_pid"); f1=$(flushes)
    [ "$got" -ge "$want" ] || echo "$name: only $got of $want messages reached the sink within ${TIMEOUT}s" >&2
    sleep 0.5   # the last sessions' QUIT
    python3 - "$name" "$res" "$t0" "$t1" "$j0" "$j1" "$s0" "$s1" "$hz" "$(tail -1 "$work/loadgen.time")" \
        "$got" "$(( $(sink_field sess) - sess0 ))" "$(eval "$left_cmd")" "$((f1 - f0))" <<'PY'
import sys
name, res, t0, t1, j0, j1, s0, s1, hz, gen, got, sess, left, fl = sys.argv[1:]
r = dict(kv.split("=", 1) for kv in res.split())
n, e2e, hz = int(r["messages"]), float(t1) - float(t0), int(hz)
gen_cpu = sum(float(x) for x in gen.split())
sink_cpu = (int(s1) - int(s0)) / hz
cpu_ms = ((int(j1) - int(j0)) / hz - gen_cpu - sink_cpu) * 1000 / max(n, 1)
print(f"{name:<8} {n:>8} {int(got):>8} {float(r['msg_per_s']):>9.0f} {int(got) / e2e:>9.0f} {e2e:>8.2f} "
      f"{float(r['p50_ms']):>7.2f} {float(r['p99_ms']):>8.2f} {cpu_ms:>7.2f} {gen_cpu * 1000 / max(n, 1):>6.2f} "
      f"{sink_cpu * 1000 / max(n, 1):>7.2f} {int(fl) / max(n, 1):>7.3f} {int(sess):>8} {left:>5} {r['errors']:>6}")
PY
}
header() {
    printf '%-8s %8s %8s %9s %9s %8s %7s %8s %7s %6s %7s %7s %8s %5s %6s\n' server injected sunk inj-msg/s relay-msg/s e2e-s \
        p50-ms p99-ms cpu-ms gen-ms sink-ms flushes sink-conn left errors
}
results=()

run_facteur() {
    local port f
    port=$(free_port)
    start_sink
    cat >"$work/facteur.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$work/facteur"
[listen]
smtp = []
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = ["127.0.0.1:$port"]
submissions = []
http = []
[submission]
plaintext_auth = true
[queue]
transports = { "relay.test" = "127.0.0.1:$sink" }
$FACTEUR_QUEUE
CONF
    f=("$bin" --config "$work/facteur.toml")
    if [ ! -e "$work/facteur/facteur.db" ]; then
        "${f[@]}" domain add bench.test >/dev/null 2>&1
        for u in "${users[@]}"; do printf '%s\n' "$pass" | "${f[@]}" account add "$u" --password-stdin >/dev/null 2>&1; done
    fi
    FACTEUR_LOG=${FACTEUR_LOG:-warn} "$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
    pids+=($!)
    wait_port "$port"
    results+=("$(measure facteur "$port" "$pass" "python3 -c \"import sqlite3; print(sqlite3.connect('file:$work/facteur/facteur.db?mode=ro', uri=True).execute('select count(*) from queue_recipients').fetchone()[0])\"")")
    kill "${pids[-1]}" 2>/dev/null || true
    wait "${pids[-1]}" 2>/dev/null || true
    stop_sink
}

run_postfix() {
    local pp pf=$work/postfix
    pp=$(free_port)
    start_sink
    private_postfix "$pf" "$pp" relay.test "relay.test=smtp:[127.0.0.1]:$sink" "
default_process_limit = $((CLIENTS + 50))
"
    postfix -c "$pf/etc" check
    postfix -c "$pf/etc" start >/dev/null
    wait_port "$pp"
    results+=("$(measure postfix "$pp" - "postqueue -c '$pf/etc' -j 2>/dev/null | wc -l")")
    postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
    stop_sink
}

for s in $SERVERS; do "run_$s"; done
echo
echo "Relay: $MESSAGES messages (at most ${DURATION}s of injection) of $SIZE bytes, $CLIENTS clients, $PER_CONN per connection, to smtp-sink on loopback"
header
printf '%s\n' "${results[@]}"
