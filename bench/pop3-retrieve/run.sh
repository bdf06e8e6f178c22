#!/usr/bin/env bash
# POP3 retrieval benchmark: facteur against Dovecot's POP3 on the same machine.
#
# USERS accounts each hold MESSAGES/USERS messages of SIZE bytes; CLIENTS parallel clients
# (round robin over the accounts) log in and RETR every message with pipelining, then QUIT
# without deleting. Each server gets a warm-up run, then RUNS measured runs; the best is
# reported. Plain POP3 with plaintext login on loopback for both, so TLS is not measured.
# Both servers check the very same Argon2id hashes (facteur's, copied into Dovecot's
# passwd-file) and both cache verified logins (facteur's auth cache, Dovecot's auth_cache).
#
#   MESSAGES=10000 USERS=50 CLIENTS=50 RUNS=3 bench/pop3-retrieve/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-10000}
USERS=${USERS:-50}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-4096}
RUNS=${RUNS:-3}
per_user=$((MESSAGES / USERS))

if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/pop3 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 dovecot-core dovecot-pop3d >/dev/null
fi
bin=${FACTEUR_BIN:-$root/target/release/facteur}
[ -x "$bin" ] || (cd "$root" && cargo build --release -p facteur)
loadgen=$root/bench/loadgen/target/release/facteur-loadgen
[ -x "$loadgen" ] || (cd "$root/bench/loadgen" && cargo build --release)

work=$(new_workdir)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/dovecot.conf" ] && dovecot -c "$work/dovecot.conf" stop 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
users=(); for i in $(seq "$USERS"); do users+=("user$i@bench.test"); done

# One message of SIZE bytes, CRLF lines.
python3 - "$SIZE" >"$work/message.eml" <<'PY'
import sys
size = int(sys.argv[1])
head = b"From: load@client.test\r\nTo: user@bench.test\r\nSubject: pop3 benchmark\r\nMessage-ID: <bench@client.test>\r\n\r\n"
line = b"x" * 76 + b"\r\n"
body = line * ((size - len(head)) // len(line) + 1)
sys.stdout.buffer.write((head + body)[:size - 2] + b"\r\n")
PY

best() { sort -t= -k5 -n | tail -1; }
measure() {
    local port=$1 out=$2
    "$loadgen" pop3 "127.0.0.1:$port" secret "$CLIENTS" "${users[@]}" >/dev/null   # warm-up
    for _ in $(seq "$RUNS"); do "$loadgen" pop3 "127.0.0.1:$port" secret "$CLIENTS" "${users[@]}"; done | best >"$out"
}

# --- facteur: mail arrives over LMTP, as from an MTA in front of it.
fport=$(free_port); lport=$(free_port)
cat >"$work/facteur.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$work/facteur"
[listen]
smtp = []
lmtp = ["127.0.0.1:$lport"]
pop3 = ["127.0.0.1:$fport"]
pop3s = []
imap = []
imaps = []
submission = []
submissions = []
http = []
[pop3]
plaintext_auth = true
max_connections_per_ip = 0
CONF
"$bin" --config "$work/facteur.toml" domain add bench.test >/dev/null
for u in "${users[@]}"; do printf 'secret\n' | "$bin" --config "$work/facteur.toml" account add "$u" --password-stdin >/dev/null; done
FACTEUR_LOG=warn "$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pids+=($!)
wait_port "$fport"
python3 - "$lport" "$work/message.eml" "$per_user" "${users[@]}" <<'PY'
import smtplib, sys
port, path, n, users = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
msg = open(path, "rb").read()
c = smtplib.LMTP("127.0.0.1", port)
for u in users:
    for _ in range(n):
        c.sendmail("load@client.test", [u], msg)
c.quit()
PY
measure "$fport" "$work/facteur.result"

# --- Dovecot: the same messages in Maildirs, high-performance login processes.
dport=$(free_port)
mkdir -p "$work/dovecot/run" "$work/dovecot/home"
python3 - "$work/facteur/facteur.db" >"$work/dovecot/passwd" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for user, domain, phc in db.execute("SELECT a.local_part, d.name, a.password FROM accounts a JOIN domains d ON d.id = a.domain_id"):
    print(f"{user}@{domain}:{{ARGON2ID}}{phc}")
PY
for u in "${users[@]}"; do
    d="$work/dovecot/home/$u/Maildir"
    mkdir -p "$d/new" "$d/cur" "$d/tmp"
    for i in $(seq "$per_user"); do cp "$work/message.eml" "$d/cur/$i.bench.$i:2,"; done
done
chown -R nobody:nogroup "$work/dovecot/home"
cat >"$work/dovecot.conf" <<CONF
protocols = pop3
listen = 127.0.0.1
base_dir = $work/dovecot/run
state_dir = $work/dovecot/state
log_path = $work/dovecot/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
auth_cache_size = 10M
auth_cache_ttl = 5 min
passdb {
  driver = passwd-file
  args = $work/dovecot/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$work/dovecot/home/%u
}
mail_location = maildir:~/Maildir
pop3_uidl_format = %08Xu%08Xv
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $dport
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
}
service pop3 {
  process_limit = 1024
}
service anvil {
  client_limit = 2000
}
service auth {
  client_limit = 2000
}
default_client_limit = 2000
mail_max_userip_connections = 1000
CONF
dovecot -c "$work/dovecot.conf"
wait_port "$dport"
measure "$dport" "$work/dovecot.result"

rate() { sed 's/.*msg_per_s=//' "$1"; }
fr=$(rate "$work/facteur.result"); dr=$(rate "$work/dovecot.result")
printf '\nPOP3 retrieval: %s messages of %s bytes, %s accounts, %s parallel clients, best of %s runs\n' "$MESSAGES" "$SIZE" "$USERS" "$CLIENTS" "$RUNS"
printf '%-10s %s\n' facteur "$(cat "$work/facteur.result")" dovecot "$(cat "$work/dovecot.result")"
python3 -c "print(f'facteur / dovecot: {$fr / $dr:.2f}x')"
