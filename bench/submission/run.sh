#!/usr/bin/env bash
# Submission benchmark: authenticated submissions over TLS, facteur against Postfix's submission
# service with Dovecot SASL, delivering into Dovecot over LMTP, on the same machine.
#
# bench/loadgen's `submission` mode runs CLIENTS parallel clients; each connects, EHLO,
# STARTTLS, EHLO, AUTH PLAIN, MAIL, RCPT (its own local address), DATA of a SIZE-byte message,
# QUIT (PER_CONN messages per connection), until MESSAGES are sent or DURATION seconds have
# passed. MODE=submissions uses implicit TLS instead of STARTTLS. Both servers use the same
# ECDSA P-256 certificate; the client verifies it and never resumes TLS sessions.
# Reported per server: messages, msg/s as the client sees it (250 after DATA), msg/s end to end
# (until every message is in its mailbox), latency p50/p99 (connect to 250), server CPU ms per
# message (machine CPU during the run, end to end, minus the load generator's own).
#
#   bench/submission/run.sh                                  # 20,000 messages, 50 clients, 1 per connection
#   PER_CONN=10 bench/submission/run.sh
#   DOVECOT_PASSWORD=plain SERVERS=postfix bench/submission/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-20000}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-50}
PER_CONN=${PER_CONN:-1}
SIZE=${SIZE:-4096}
USERS=${USERS:-10}
MODE=${MODE:-submission}                      # submission (STARTTLS) | submissions (implicit TLS)
SERVERS=${SERVERS:-postfix facteur}
DOVECOT_PASSWORD=${DOVECOT_PASSWORD:-hash}    # plain: {PLAIN} in Dovecot's passwd-file instead of facteur's Argon2id hash
pass=secret
name=mx.bench.test
users=()
for i in $(seq "$USERS"); do users+=("u$i@bench.test"); done

if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/lmtp ] || [ ! -x /usr/bin/time ]; then
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 postfix dovecot-core dovecot-lmtpd time >/dev/null
fi
bin=${FACTEUR_BIN:-$root/target/release/facteur}
[ -n "${FACTEUR_BIN:-}" ] || (cd "$root" && cargo build --release -q -p facteur)
loadgen=$root/bench/loadgen/target/release/facteur-loadgen
(cd "$root/bench/loadgen" && cargo build --release -q)

work=$(mktemp -d -t facteur-submission-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -d "$work/postfix/etc" ] && postfix -c "$work/postfix/etc" stop >/dev/null 2>&1 || true
    [ -f "$work/dovecot.conf" ] && dovecot -c "$work/dovecot.conf" stop >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# One certificate for both servers: ECDSA P-256, what facteur makes for itself.
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$name" \
    -addext "subjectAltName=DNS:$name" -addext "basicConstraints=critical,CA:FALSE" -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" 2>/dev/null
chmod 644 "$work/tls/key.pem"

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)

# measure NAME PORT COUNT_CMD: runs the load generator, then waits until COUNT_CMD prints the
# number of messages the client had answered 250; prints one result line.
measure() {
    local name=$1 port=$2 count_cmd=$3 j0 t0 t1 j1 res got want deadline
    j0=$(busy_jiffies); t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S' -o "$work/loadgen.time" \
        "$loadgen" "$MODE" "127.0.0.1:$port" "$name_tls" "$work/tls/cert.pem" "$pass" "$CLIENTS" "$MESSAGES" \
        "$DURATION" "$PER_CONN" "$SIZE" "${users[@]}" >"$work/loadgen.out" 2>"$work/loadgen.err" ||
        echo "$name: load generator reported errors: $(head -3 "$work/loadgen.err")" >&2
    res=$(cat "$work/loadgen.out")
    want=$(printf '%s\n' "$res" | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
    [ -n "$want" ] || { echo "$name: no result: $(cat "$work/loadgen.err")" >&2; return 1; }
    got=0; deadline=$(( $(date +%s) + 600 ))
    while [ "$got" -lt "$want" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        got=$(eval "$count_cmd"); [ "$got" -ge "$want" ] || sleep 0.05
    done
    t1=$(date +%s.%N); j1=$(busy_jiffies)
    [ "$got" -ge "$want" ] || { echo "$name: only $got of $want messages delivered" >&2; return 1; }
    python3 - "$name" "$res" "$t0" "$t1" "$j0" "$j1" "$hz" "$(tail -1 "$work/loadgen.time")" <<'PY'
import sys
name, res, t0, t1, j0, j1, hz, gen = sys.argv[1:]
r = dict(kv.split("=", 1) for kv in res.split())
n, e2e = int(r["messages"]), float(t1) - float(t0)
gen_cpu = sum(float(x) for x in gen.split())
cpu_ms = ((int(j1) - int(j0)) / int(hz) - gen_cpu) * 1000 / max(n, 1)
print(f"{name:<16} {n:>8} {float(r['seconds']):>8.2f} {float(r['msg_per_s']):>8.0f} {n / e2e:>8.0f} "
      f"{float(r['p50_ms']):>8.2f} {float(r['p99_ms']):>8.2f} {cpu_ms:>8.2f} {gen_cpu * 1000 / max(n, 1):>8.2f} {r['errors']:>6}  {r['tls']}")
PY
}
header() {
    printf '%-16s %8s %8s %8s %8s %8s %8s %8s %8s %6s  %s\n' server messages seconds msg/s e2e-msg/s p50-ms p99-ms cpu-ms gen-ms errors tls
}
name_tls=$name
results=()

# The Argon2id hashes facteur stores (PHC strings), by address, for Dovecot's passwd-file.
facteur_hashes() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for local, domain, pw in db.execute("SELECT a.local_part, d.name, a.password FROM accounts a JOIN domains d ON d.id = a.domain_id"):
    print(f"{local}@{domain}\t{pw}")
PY
}

# facteur's accounts (made first: Dovecot gets the same hashes).
setup_facteur() {
    local port=$1
    local listen_sub="[]" listen_subs="[]"
    if [ "$MODE" = submissions ]; then listen_subs="[\"127.0.0.1:$port\"]"; else listen_sub="[\"127.0.0.1:$port\"]"; fi
    cat >"$work/facteur.toml" <<CONF
hostname = "$name"
data_dir = "$work/facteur"
[listen]
smtp = []
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = $listen_sub
submissions = $listen_subs
http = []
[tls]
cert = "$work/tls/cert.pem"
key = "$work/tls/key.pem"
CONF
    local f=("$bin" --config "$work/facteur.toml")
    if [ ! -e "$work/facteur/facteur.db" ]; then
        "${f[@]}" domain add bench.test >/dev/null 2>&1
        for u in "${users[@]}"; do printf '%s\n' "$pass" | "${f[@]}" account add "$u" --password-stdin >/dev/null 2>&1; done
    fi
}

run_facteur() {
    local port
    port=$(free_port)
    setup_facteur "$port"
    FACTEUR_LOG=warn "$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
    pids+=($!)
    wait_port "$port"
    # 250 means stored: the messages are there when the load generator is done; the count confirms it.
    results+=("$(measure facteur "$port" "python3 -c \"import sqlite3; print(sqlite3.connect('file:$work/facteur/facteur.db?mode=ro', uri=True).execute('select count(*) from messages').fetchone()[0])\"")")
    kill "${pids[-1]}" 2>/dev/null || true
    wait "${pids[-1]}" 2>/dev/null || true
}

run_postfix() {
    local dl pp sp d=$work/dovecot pf=$work/postfix
    dl=$(free_port); pp=$(free_port); sp=$(free_port)
    [ -e "$work/facteur/facteur.db" ] || setup_facteur "$sp"
    mkdir -p "$d/run" "$d/home"
    chown nobody:nogroup "$d/home"
    if [ "$DOVECOT_PASSWORD" = plain ]; then
        for u in "${users[@]}"; do printf '%s:{PLAIN}%s\n' "$u" "$pass"; done >"$d/passwd"
    else
        facteur_hashes "$work/facteur/facteur.db" | awk -F'\t' '{print $1 ":{ARGON2ID}" $2}' >"$d/passwd"
    fi
    # Dovecot: SASL for Postfix (passwd-file, auth cache as in bench/imap) and LMTP into Maildirs.
    cat >"$work/dovecot.conf" <<CONF
protocols = lmtp
listen = 127.0.0.1
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 10M
auth_cache_ttl = 5 min
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/home/%u allow_all_users=yes
}
mail_location = maildir:~/Maildir
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
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
    # Postfix with its default durability; the submission service as Debian's master.cf has it
    # (commented out), with Dovecot SASL and the sender bound to the login.
    local logins
    logins=$(for u in "${users[@]}"; do printf '%s=%s, ' "$u" "$u"; done)
    private_postfix "$pf" "$pp" bench.test "bench.test=lmtp:inet:127.0.0.1:$dl" "
smtpd_tls_cert_file = $work/tls/cert.pem
smtpd_tls_key_file = $work/tls/key.pem
smtpd_tls_loglevel = 0
smtpd_sasl_type = dovecot
smtpd_sasl_path = $d/run/auth-postfix
smtpd_sender_login_maps = inline:{ ${logins%, } }
default_process_limit = $((CLIENTS + 50))
"
    local wrapper=no
    [ "$MODE" = submissions ] && wrapper=yes
    cat >>"$pf/etc/master.cf" <<CONF
127.0.0.1:$sp inet n - n - - smtpd
  -o syslog_name=postfix/$MODE
  -o smtpd_tls_wrappermode=$wrapper
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=reject_sender_login_mismatch
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
CONF
    postfix -c "$pf/etc" check
    postfix -c "$pf/etc" start >/dev/null
    wait_port "$sp"
    results+=("$(measure "postfix+dovecot" "$sp" "find '$d/home' -path '*/Maildir/new/*' -type f 2>/dev/null | wc -l")")
    grep -E 'Error|Fatal|Panic' "$d/dovecot.log" | sed 's/^[A-Z][a-z]* [0-9 ]* [0-9:]* //' | sort | uniq -c | sort -rn | head -5 >&2 || true
    postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
    dovecot -c "$work/dovecot.conf" stop >/dev/null 2>&1 || true
}

for s in $SERVERS; do "run_$s"; done
echo
tls_what=STARTTLS; [ "$MODE" = submissions ] && tls_what="implicit TLS"
echo "Submission: $MESSAGES messages (at most ${DURATION}s) of $SIZE bytes, $CLIENTS clients, $PER_CONN per connection, $tls_what, AUTH PLAIN, $USERS accounts; Dovecot passwords: $DOVECOT_PASSWORD"
header
printf '%s\n' "${results[@]}"
