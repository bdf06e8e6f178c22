#!/usr/bin/env bash
# SMTP delivery benchmark: facteur against a Postfix + Dovecot LMTP stack on the same machine.
#
# Postfix's smtp-source sends MESSAGES messages of SIZE bytes from CONCURRENCY parallel
# sessions (connections reused, -d), RCPTS recipients each, to 127.0.0.1. Measured end to end:
# from the first byte until every copy is durably in a mailbox (facteur answers 250 only then;
# for Postfix + Dovecot, until the Maildir files exist). Reported per stack: messages/s,
# deliveries/s, server CPU ms per message (machine CPU during the run minus smtp-source's own),
# and disk flushes per message (the block device's flush counter).
#
#   MESSAGES=10000 CONCURRENCY=50 RCPTS=1 bench/smtp-delivery/run.sh
#   STACKS=facteur RCPTS=10 bench/smtp-delivery/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-10000}
CONCURRENCY=${CONCURRENCY:-50}
RCPTS=${RCPTS:-1}
SIZE=${SIZE:-4096}
STACKS=${STACKS:-postfix facteur}

if ! command -v smtp-source >/dev/null || ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/lmtp ] || [ ! -x /usr/bin/time ]; then
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 postfix dovecot-core dovecot-lmtpd time >/dev/null
fi
bin=${FACTEUR_BIN:-$root/target/release/facteur}
[ -x "$bin" ] || (cd "$root" && cargo build --release -p facteur)

work=$(new_workdir)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -d "$work/postfix/etc" ] && postfix -c "$work/postfix/etc" stop >/dev/null 2>&1 || true
    [ -f "$work/dovecot.conf" ] && dovecot -c "$work/dovecot.conf" stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# smtp-source -r N sends to the address as given, then with 1, 2, ... prepended.
recipients() { echo user; [ "$RCPTS" -gt 1 ] && seq -f '%guser' 1 "$RCPTS"; true; }

dev=$(basename "$(findmnt -no SOURCE -T "$work" | sed 's/\[.*//')")
flushes() { [ -r "/sys/class/block/$dev/stat" ] && awk '{print $16}' "/sys/class/block/$dev/stat" || echo 0; }
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)

# Runs smtp-source against 127.0.0.1:$1 and waits until `$2` (a command) prints the number of
# copies delivered; prints one result line.
measure() {
    local name=$1 port=$2 count_cmd=$3
    local want=$((MESSAGES * RCPTS))
    local f0 j0 t0 t1 f1 j1
    f0=$(flushes); j0=$(busy_jiffies); t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$work/source.time" \
        smtp-source -d -s "$CONCURRENCY" -m "$MESSAGES" -l "$SIZE" -r "$RCPTS" \
        -f load@client.test -t user@bench.test -M client.test "127.0.0.1:$port"
    local got=0 deadline=$(( $(date +%s) + 600 ))
    while [ "$got" -lt "$want" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        got=$(eval "$count_cmd"); [ "$got" -ge "$want" ] || sleep 0.05
    done
    t1=$(date +%s.%N); f1=$(flushes); j1=$(busy_jiffies)
    [ "$got" -ge "$want" ] || { echo "$name: only $got of $want copies delivered" >&2; return 1; }
    python3 - "$name" "$MESSAGES" "$RCPTS" "$t0" "$t1" "$f0" "$f1" "$j0" "$j1" "$hz" "$(cat "$work/source.time")" <<'PY'
import sys
name, n, r, t0, t1, f0, f1, j0, j1, hz, src = sys.argv[1:]
n, r, secs = int(n), int(r), float(t1) - float(t0)
src_cpu = sum(float(x) for x in src.split())
cpu_ms = ((int(j1) - int(j0)) / int(hz) - src_cpu) * 1000 / n
print(f"{name:<16} {n:>8} {r:>5} {secs:>8.2f} {n/secs:>9.0f} {n*r/secs:>12.0f} {cpu_ms:>11.2f} {(int(f1)-int(f0))/n:>11.3f}")
PY
}

header() { printf '%-16s %8s %5s %8s %9s %12s %11s %11s\n' stack messages rcpts seconds msg/s deliveries/s cpu-ms/msg flushes/msg; }
results=()

run_postfix() {
    local dl pp pf="$work/postfix"
    dl=$(free_port); pp=$(free_port)
    # Dovecot LMTP into Maildirs, any user of bench.test (static userdb), default fsync policy.
    mkdir -p "$work/dovecot/run" "$work/dovecot/home"
    chown nobody:nogroup "$work/dovecot/home"
    cat >"$work/dovecot.conf" <<CONF
protocols = lmtp
listen = 127.0.0.1
base_dir = $work/dovecot/run
state_dir = $work/dovecot/state
log_path = $work/dovecot/dovecot.log
ssl = no
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$work/dovecot/home/%u allow_all_users=yes
}
mail_location = maildir:~/Maildir
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $dl
  }
  unix_listener lmtp {
    mode = 0
  }
}
CONF
    dovecot -c "$work/dovecot.conf"
    wait_port "$dl"
    # A private Postfix instance with its default durability, relaying bench.test over LMTP.
    private_postfix "$pf" "$pp" bench.test "bench.test=lmtp:inet:127.0.0.1:$dl"
    postfix -c "$pf/etc" start >/dev/null
    wait_port "$pp"
    results+=("$(measure postfix+dovecot "$pp" "find '$work/dovecot/home' -path '*/Maildir/new/*' -type f 2>/dev/null | wc -l")")
    postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
    dovecot -c "$work/dovecot.conf" stop >/dev/null 2>&1 || true
}

run_facteur() {
    local sp
    sp=$(free_port)
    cat >"$work/facteur.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$work/facteur"
[listen]
smtp = ["127.0.0.1:$sp"]
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = []
submissions = []
http = []
# Like the Postfix + Dovecot stack here: no SPF/DKIM/DMARC checks (bench/inbound-auth measures
# them); DNS to a closed loopback port, so nothing leaves the machine.
[auth]
enabled = false
[dns]
nameservers = ["127.0.0.1:9"]
CONF
    local f=("$bin" --config "$work/facteur.toml")
    "${f[@]}" domain add bench.test >/dev/null
    for u in $(recipients); do printf 'secret\n' | "${f[@]}" account add "$u@bench.test" --password-stdin >/dev/null; done
    FACTEUR_LOG=warn "${f[@]}" serve 2>"$work/facteur.log" &
    pids+=($!)
    wait_port "$sp"
    # 250 means stored: the copies exist when smtp-source is done; the count confirms it.
    results+=("$(measure facteur "$sp" "python3 -c \"import sqlite3; print(sqlite3.connect('file:$work/facteur/facteur.db?mode=ro', uri=True).execute('select count(*) from messages').fetchone()[0])\"")")
    kill "${pids[-1]}" 2>/dev/null || true
}

for s in $STACKS; do "run_$s"; done
echo
echo "SMTP delivery: $MESSAGES messages of $SIZE bytes, $RCPTS recipient(s) each, $CONCURRENCY sessions (smtp-source -d)"
header
printf '%s\n' "${results[@]}"
