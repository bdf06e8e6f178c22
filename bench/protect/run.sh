#!/usr/bin/env bash
# Protection benchmark: what the MX's protection layer costs facteur's inbound rate.
#
# The same load against facteur's `smtp` role twice, each time from a fresh data directory,
# RUNS times alternating (off, on, off, on, ...). Email authentication (`[auth] enabled = true`)
# is on in both modes: it is the MX's baseline (bench/inbound-auth measures it). The two modes
# differ only by the protection layer:
#
#   off: `[protect]` no allow list, every rate 0, `ban_after = 0`; `[smtp]
#        max_connections_per_ip = 0`; every `[checks]` rule "off", no DNS list; no greylisting,
#        no spam scoring, no `[antivirus]`, no milter.
#   on:  `[protect]` no allow list (the client is not exempt), every rate 10,000,000 a minute
#        (counted, never reached), `ban_after = 10`; `[smtp] max_connections_per_ip = 1000`;
#        `[checks]` at their defaults (helo_invalid reject, helo_non_fqdn 1.0, sender and
#        recipient non-FQDN reject, sender_unknown_domain reject, reverse_dns_missing 1.0)
#        plus a DNSBL `bl.bench.test` (reject) and a DNSWL `wl.bench.test` (-1.0), the client
#        listed in neither (NXDOMAIN); `[greylist] enabled, delay_secs = 0` (every triplet
#        passes at once); `[spam]` at its defaults (built-in rules, each account's Bayes,
#        trained beforehand with `facteur spam learn` on crates/spam/tests/corpus so that it
#        counts); `[antivirus]` a real clamd (Debian's clamav-daemon) with a test-only
#        database (the EICAR MD5, no freshclam).
#
# The client connects from SOURCE (198.51.100.10, RFC 5737 TEST-NET-2, added to `lo` for the
# run and removed at exit): facteur sends no loopback or private address to DNS lists, so from
# 127.0.0.1 the DNSBL/DNSWL lookups would not happen. A private dnsmasq on a loopback port
# serves every name: sender.test's SPF (allowing SOURCE), MX, DKIM key and DMARC record; PTR
# SOURCE -> mail.sender.test -> A SOURCE; the two DNS lists (only 127.0.0.2 listed, the RFC
# 5782 §5 test entry). It logs every query, and the script counts the lists' queries.
#
# bench/loadgen's `mx` mode sends one DKIM-signed message of SIZE bytes again and again:
# connect, EHLO mail.sender.test, PER_CONN times MAIL FROM:<sender@sender.test> RCPT
# TO:<uN@bench.test> DATA, QUIT, CLIENTS connections in parallel. facteur answers 250 only
# once the copy is stored. Each run is checked afterwards (the script fails otherwise): stored
# copies = messages answered 250, all with dmarc=pass and iprev=pass; on: every copy carries
# X-Spam-Status and facteur's log has one `filters` line per message with `virus=clean` and
# `greylist=`, and the DNS lists were asked; off: no X-Spam-Status, no `filters` line.
#
# Reported per run: msg/s, p50/p99 latency, server CPU ms per message (the machine's busy time
# minus the load generator's and dnsmasq's: facteur, clamd and the kernel), facteur's own and
# clamd's own CPU (/proc/PID/stat), dnsmasq's, DNS queries per message, the DNS lists' queries,
# disk flushes per message, the load average at the start, rest-% (other work) and steal-%.
# Each run waits for a quiet machine; a disturbed one is marked * and made again. Then the cost
# of the protections: throughput and CPU of each mode against `off`.
#
# MODES adds modes with all protections but some (`on-no-antivirus`, `on-no-spam`,
# `on-no-greylist`, `on-no-checks`, `on-no-limits`, or several: `on-no-spam-no-antivirus`), to
# see what each one costs.
#
#   bench/protect/run.sh                          # 20,000 messages, 50 clients, 2 runs each
#   CLAMD_TMP=/dev/shm bench/protect/run.sh       # clamd's temporary files on tmpfs
#   RUNS=1 MODES="off on on-no-antivirus on-no-spam on-no-spam-no-antivirus" bench/protect/run.sh
#   GREYLIST_SKIP_AUTH=false bench/protect/run.sh # greylisting's own lookup for every message
#   PROFILE=/tmp/prof bench/protect/run.sh        # + one run each under perf record -g
#   SOURCE=127.0.0.1 bench/protect/run.sh         # loopback client: no DNS list lookups
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-20000}
CLIENTS=${CLIENTS:-50}
PER_CONN=${PER_CONN:-1}
SIZE=${SIZE:-4096}
USERS=${USERS:-10}
RUNS=${RUNS:-2}                 # rounds of runs, each mode once a round
MODES=${MODES:-off on}          # the modes of a round, in order (see has below)
DURATION=${DURATION:-120}       # most seconds of injection per run
TIMEOUT=${TIMEOUT:-300}         # most seconds a run may take in all
DNS_TTL=${DNS_TTL:-300}         # TTL of every DNS answer (dnsmasq --local-ttl)
MAX_LOAD=${MAX_LOAD:-1.0}       # wait for the 1-minute load average to fall below this ...
LOAD_WAIT=${LOAD_WAIT:-900}     # ... for at most this many seconds
MAX_REST=${MAX_REST:-10}        # a run where other work took more than this % of the CPU ...
RETRIES=${RETRIES:-2}           # ... is marked (*) and made again, at most this many times
PROFILE=${PROFILE:-}            # a directory: one more run of each under perf record, reports there
SOURCE=${SOURCE:-198.51.100.10} # the client's address (added to lo when no interface has it)
GREYLIST_SKIP_AUTH=${GREYLIST_SKIP_AUTH:-true}  # [greylist] skip_authenticated (facteur's default)
CLAMD_TMP=${CLAMD_TMP:-}        # where clamd's TemporaryDirectory goes (/dev/shm: tmpfs); else the work directory
# facteur's own default filter: the `filters` line of each message is at info.
export FACTEUR_LOG=${FACTEUR_LOG:-info,rustls=error}

# The protections of a mode: `off` none; `on` all; `on-no-NAME[-no-NAME...]` all but those
# named (limits, checks, greylist, spam, antivirus), to see what each one costs.
has() {
    case $1 in
    on | on-*) [[ $1 != *-no-$2 && $1 != *-no-$2-* ]] ;;
    *) return 1 ;;
    esac
}
check_mode() {
    local name
    if [ "$1" = off ] || [ "$1" = on ]; then return 0; fi
    [[ $1 == on-no-* ]] || return 1
    for name in $(sed 's/^on-no-//; s/-no-/ /g' <<<"$1"); do
        case $name in limits | checks | greylist | spam | antivirus) ;; *) return 1 ;; esac
    done
}
for m in $MODES; do
    check_mode "$m" || { echo "MODES: unknown mode $m (off, on, on-no-NAME with NAME limits, checks, greylist, spam or antivirus, several -no-NAME in a row)" >&2; exit 2; }
done
sender=sender@sender.test
client=$SOURCE
helo=mail.sender.test
selector=bench
users=()
for i in $(seq "$USERS"); do users+=("u$i@bench.test"); done
corpus=$root/crates/spam/tests/corpus

if ! command -v dnsmasq >/dev/null || ! command -v clamd >/dev/null || [ ! -x /usr/bin/time ] ||
    ! /usr/bin/python3 -c 'import dkim, dns.resolver' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
        dnsmasq-base python3-dkim python3-dnspython time clamav-daemon >/dev/null
fi
if [ -n "$PROFILE" ] && ! command -v perf >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 linux-perf >/dev/null
fi
bin=${FACTEUR_BIN:-$root/target/release/facteur}
[ -n "${FACTEUR_BIN:-}" ] || (cd "$root" && cargo build --release -q -p facteur)
loadgen=$root/bench/loadgen/target/release/facteur-loadgen
(cd "$root/bench/loadgen" && cargo build --release -q)

work=$(mktemp -d -t facteur-protect-bench.XXXXXX)
chmod 755 "$work"
pids=()
added_source=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -z "$added_source" ] || ip addr del "$SOURCE/32" dev lo 2>/dev/null || true
    [ -z "$CLAMD_TMP" ] || [ -z "${clamtmp:-}" ] || rm -rf "$clamtmp"
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The client's address: a non-internal one on the loopback device, so facteur asks the DNS
# lists about it (it never sends loopback or private addresses to them).
if ! ip -o -4 addr show | grep -q " inet $SOURCE/"; then
    ip addr add "$SOURCE/32" dev lo
    added_source=1
fi
lists_asked=true
case $SOURCE in
127.* | 10.* | 192.168.* | 172.1[6-9].* | 172.2[0-9].* | 172.3[01].* | 169.254.*)
    lists_asked=false
    echo "SOURCE=$SOURCE is internal: facteur does not ask the DNS lists about it" >&2 ;;
esac

dev=$(basename "$(findmnt -no SOURCE -T "$work" | sed 's/\[.*//')")
flushes() { [ -r "/sys/class/block/$dev/stat" ] && awk '{print $16}' "/sys/class/block/$dev/stat" || echo 0; }
busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
steal_jiffies() { awk '/^cpu /{print $9}' /proc/stat; }
proc_jiffies() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
load1() { cut -d' ' -f1 /proc/loadavg; }
# The machine has two cores and other work may run: each run starts when the 1-minute load
# average is below MAX_LOAD (the previous run's own load has to decay too), or after LOAD_WAIT.
wait_quiet() {
    local waited=0
    while awk -v l="$(load1)" -v m="$MAX_LOAD" 'BEGIN{exit !(l >= m)}'; do
        if [ "$waited" -ge "$LOAD_WAIT" ]; then
            echo "load average still $(load1) after ${LOAD_WAIT}s; measuring anyway" >&2
            return
        fi
        sleep 5; waited=$((waited + 5))
    done
}

# clamd with a test-only database: the EICAR file's MD5 (tests/interop/08-protect/run.sh).
# clamd writes every stream it scans to a file under TemporaryDirectory (a directory of its
# own for a mail's parts), and removes them afterwards.
clam=$(free_port)
mkdir -p "$work/clamdb"
if [ -n "$CLAMD_TMP" ]; then
    clamtmp=$(mktemp -d -p "$CLAMD_TMP" facteur-protect-clamd.XXXXXX)
else
    clamtmp=$work/clamtmp
    mkdir -p "$clamtmp"
fi
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$work/eicar.com"
sum=$(md5sum "$work/eicar.com" | cut -d' ' -f1)
[ "$sum" = 44d88612fea8a8f36de82e1278abb02f ] || { echo "EICAR file assembled wrongly ($sum)" >&2; exit 1; }
echo "$sum:68:Eicar-Test-Signature" >"$work/clamdb/test.hdb"
cat >"$work/clamd.conf" <<CONF
Foreground yes
DatabaseDirectory $work/clamdb
TemporaryDirectory $clamtmp
TCPSocket $clam
TCPAddr 127.0.0.1
PidFile $work/clamd.pid
CONF
clamd --config-file="$work/clamd.conf" >"$work/clamd.log" 2>&1 &
clam_pid=$!
pids+=("$clam_pid")
wait_port "$clam" || { cat "$work/clamd.log" >&2; exit 1; }
# clamd answers: EICAR found, a clean file clean (INSTREAM, as facteur asks).
/usr/bin/python3 - "$clam" "$work/eicar.com" <<'PY' || { cat "$work/clamd.log" >&2; exit 1; }
import socket, struct, sys
port, eicar = int(sys.argv[1]), open(sys.argv[2], "rb").read()
def scan(data):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(10)
    s.sendall(b"zINSTREAM\0" + struct.pack(">I", len(data)) + data + struct.pack(">I", 0))
    out = b""
    while not out.endswith(b"\0"):
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    return out.rstrip(b"\0").decode()
# clamd names signatures of a database not signed by ClamAV `NAME.UNOFFICIAL`.
assert scan(eicar) in ("stream: Eicar-Test-Signature FOUND", "stream: Eicar-Test-Signature.UNOFFICIAL FOUND"), scan(eicar)
assert scan(b"hello\r\n") == "stream: OK", scan(b"hello\r\n")
PY

# The sender's key and the signed message (as bench/inbound-auth: CRLF line ends; one body
# line starts with a dot).
openssl genrsa -traditional -out "$work/dkim.key" 2048 2>/dev/null
pubkey=$(openssl rsa -in "$work/dkim.key" -pubout -outform DER 2>/dev/null | base64 -w0)
/usr/bin/python3 - "$work/dkim.key" "$work/message.eml" "$SIZE" "$selector" "$sender" <<'PY'
import sys, dkim
key, out, size, selector, sender = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
domain = sender.split("@")[1]
head = (f"From: Sender <{sender}>\r\nTo: <user@bench.test>\r\nSubject: protection benchmark\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <protect.1@{domain}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
line = "The quick brown fox jumps over the lazy dog; protection benchmark.\r\n"
body = ". A line that starts with a dot, stuffed on the wire.\r\n"
def signed(body):
    msg = (head + body).encode()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), open(key, "rb").read(),
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type"])
    return sig + msg
while len(signed(body + line)) <= size:
    body += line
open(out, "wb").write(signed(body))
PY

# The DNS. TXT strings longer than 255 octets: one character-string each 255.
dkim_txt="v=DKIM1; k=rsa; p=$pubkey"
dkim_parts=()
for ((i = 0; i < ${#dkim_txt}; i += 255)); do dkim_parts+=("${dkim_txt:i:255}"); done
dns=$(free_port)
spf="v=spf1 ip4:127.0.0.0/8 ip4:$client -all"
ptr=$(echo "$client" | awk -F. '{print $4"."$3"."$2"."$1".in-addr.arpa"}')
rev=$(echo "$client" | awk -F. '{print $4"."$3"."$2"."$1}')
dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --log-facility=- --log-queries \
    --no-resolv --no-hosts --no-poll --listen-address=127.0.0.1 --bind-interfaces --port="$dns" \
    --local=/test/ --local-ttl="$DNS_TTL" \
    --txt-record="sender.test,$spf" \
    --mx-host="sender.test,$helo,10" \
    --txt-record="$helo,$spf" \
    --txt-record="_dmarc.sender.test,v=DMARC1; p=reject" \
    --txt-record="$selector._domainkey.sender.test,$(IFS=,; echo "${dkim_parts[*]}")" \
    --ptr-record="$ptr,$helo" \
    --address="/$helo/$client" \
    --host-record="2.0.0.127.bl.bench.test,127.0.0.2" \
    --txt-record="2.0.0.127.bl.bench.test,test entry (RFC 5782)" \
    --host-record="2.0.0.127.wl.bench.test,127.0.0.2" \
    2>"$work/dnsmasq.log" &
dns_pid=$!
pids+=("$dns_pid")
sleep 0.3
/usr/bin/python3 - "$dns" "$selector" "$helo" "$dkim_txt" "$spf" "$client" "$rev" <<'PY' || { cat "$work/dnsmasq.log" >&2; exit 1; }
import sys, time, dns.resolver, dns.reversename
port, selector, helo, dkim_txt, spf, client, rev = sys.argv[1:]
r = dns.resolver.Resolver(configure=False)
r.nameservers, r.port, r.lifetime = ["127.0.0.1"], int(port), 2
for _ in range(20):
    try:
        r.resolve("sender.test", "TXT"); break
    except Exception:
        time.sleep(0.2)
def txt(name):
    return [b"".join(a.strings).decode() for a in r.resolve(name, "TXT")]
def nx(name):
    try:
        r.resolve(name, "A")
    except dns.resolver.NXDOMAIN:
        return True
    return False
assert txt(f"{selector}._domainkey.sender.test") == [dkim_txt]
assert txt("sender.test") == [spf]
assert txt(helo) == [spf]
assert txt("_dmarc.sender.test")[0].startswith("v=DMARC1")
assert [str(a.exchange) for a in r.resolve("sender.test", "MX")] == [helo + "."]
assert [str(a) for a in r.resolve(dns.reversename.from_address(client), "PTR")] == [helo + "."]
assert [str(a) for a in r.resolve(helo, "A")] == [client]
# The lists answer: the test entry listed, the client not (NXDOMAIN, RFC 5782 §2.1).
assert [str(a) for a in r.resolve("2.0.0.127.bl.bench.test", "A")] == ["127.0.0.2"]
assert [str(a) for a in r.resolve("2.0.0.127.wl.bench.test", "A")] == ["127.0.0.2"]
assert nx(f"{rev}.bl.bench.test") and nx(f"{rev}.wl.bench.test")
PY
# dnsmasq counts the queries it answered from its configuration (SIGUSR1 writes the figure).
dns_queries() {
    kill -USR1 "$dns_pid"
    sleep 0.2
    sed -n 's/.*queries answered locally \([0-9]*\).*/\1/p' "$work/dnsmasq.log" | tail -1 | grep . || echo 0
}
# The DNS lists' queries about the client logged since line $1 of dnsmasq's log.
list_queries() {
    tail -n +"$(($1 + 1))" "$work/dnsmasq.log" | grep -cE "query\[A\] $rev\.(bl|wl)\.bench\.test from" || true
}

# The settings of a mode (see the head of this file and README.md).
mode_conf() {
    local mode=$1
    if has "$mode" limits; then cat <<CONF
[smtp]
max_connections_per_ip = 1000
[protect]
allow = []
ban_after = 10
connections_per_minute = 10000000
messages_per_minute = 10000000
recipients_per_minute = 10000000
sender_domain_messages_per_minute = 10000000
CONF
    else cat <<CONF
[smtp]
max_connections_per_ip = 0
[protect]
allow = []
ban_after = 0
connections_per_minute = 0
messages_per_minute = 0
recipients_per_minute = 0
account_messages_per_minute = 0
account_recipients_per_minute = 0
sender_domain_messages_per_minute = 0
CONF
    fi
    if has "$mode" checks; then cat <<CONF
[checks]
helo_invalid = "reject"
helo_non_fqdn = 1.0
sender_non_fqdn = "reject"
recipient_non_fqdn = "reject"
sender_unknown_domain = "reject"
reverse_dns_missing = 1.0
pregreet = "reject"
pregreet_wait_ms = 0
[[checks.dnsbl]]
zone = "bl.bench.test"
rule = "reject"
[[checks.dnswl]]
zone = "wl.bench.test"
rule = -1.0
CONF
    else cat <<CONF
[checks]
helo_invalid = "off"
helo_non_fqdn = "off"
sender_non_fqdn = "off"
recipient_non_fqdn = "off"
sender_unknown_domain = "off"
reverse_dns_missing = "off"
pregreet = "off"
pregreet_wait_ms = 0
dnsbl = []
dnswl = []
CONF
    fi
    if has "$mode" greylist; then cat <<CONF
[greylist]
enabled = true
delay_secs = 0
skip_authenticated = $GREYLIST_SKIP_AUTH
CONF
    else printf '[greylist]\nenabled = false\n'
    fi
    if has "$mode" spam; then printf '[spam]\nenabled = true\nengine = "builtin"\nbayes = true\n'
    else printf '[spam]\nenabled = false\n'
    fi
    if has "$mode" antivirus; then printf '[antivirus]\nclamd = "127.0.0.1:%s"\n' "$clam"
    fi
}

# The server for one run: a fresh data directory, the accounts, each account's classifier
# trained (in both modes, so both stores start alike), then `serve`.
start_facteur() {
    local dir=$1 mode=$2
    port=$(free_port)
    cat >"$work/facteur.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$dir"
[listen]
smtp = ["127.0.0.1:$port"]
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = []
submissions = []
http = []
[dns]
nameservers = ["127.0.0.1:$dns"]
[auth]
enabled = true
$(mode_conf "$mode")
CONF
    local f=("$bin" --config "$work/facteur.toml")
    "${f[@]}" domain add bench.test >/dev/null 2>&1
    for u in "${users[@]}"; do
        printf 'secret\n' | "${f[@]}" account add "$u" --password-stdin >/dev/null 2>&1
        "${f[@]}" spam learn "$u" --spam "$corpus"/spam/train-*.eml >"$work/learn.out" 2>&1 &&
            "${f[@]}" spam learn "$u" --ham "$corpus"/ham/train-*.eml >>"$work/learn.out" 2>&1 ||
            { echo "facteur spam learn failed: $(cat "$work/learn.out")" >&2; exit 1; }
    done
    # Once: the classifier counts for the bench's message (enough learnt of each kind).
    if [ ! -e "$work/bayes.txt" ]; then
        "${f[@]}" spam check --account "${users[0]}" "$work/message.eml" >"$work/bayes.txt" 2>&1 || true
        grep -q '^Bayes: spam probability' "$work/bayes.txt" ||
            { echo "the Bayes classifier does not count after training: $(cat "$work/bayes.txt")" >&2; exit 1; }
    fi
    FACTEUR_LOG=$FACTEUR_LOG "${f[@]}" serve 2>"$dir.log" &
    facteur_pid=$!
    pids+=("$facteur_pid")
    wait_port "$port"
}
stop_facteur() {
    kill "$facteur_pid" 2>/dev/null || true
    wait "$facteur_pid" 2>/dev/null || true
}

# What the stored copies and the log show: as many copies as 250 replies, each authenticated
# (dmarc=pass, iprev=pass: the baseline of every mode); with spam scoring every copy carries
# X-Spam-Status, with greylisting, the virus scan or spam scoring each message has its
# `filters` log line, with `greylist=` and `virus=clean` when those are on; without them,
# none of these. Prints the number of copies; fails otherwise.
verify() {
    local dir=$1 mode=$2 want=$3 spam=false greylist=false antivirus=false
    has "$mode" spam && spam=true
    has "$mode" greylist && greylist=true
    has "$mode" antivirus && antivirus=true
    /usr/bin/python3 - "$dir/facteur.db" "$dir.log" "$want" "$dir.sample" "$spam" "$greylist" "$antivirus" <<'PY'
import sqlite3, sys
db, log, want, sample = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
spam_on, greylist_on, antivirus_on = (a == "true" for a in sys.argv[5:8])
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
total = c.execute("SELECT count(*) FROM messages").fetchone()[0]
def having(*needles):
    q = "SELECT count(*) FROM messages WHERE " + " AND ".join("instr(prefix, ?) > 0" for _ in needles)
    return c.execute(q, [n.encode() for n in needles]).fetchone()[0]
problems = []
if total != want:
    problems.append(f"{total} copies stored, {want} answered 250")
authed = having("Authentication-Results: mx.bench.test;", "dkim=pass", "dmarc=pass", "iprev=pass")
if authed != total:
    problems.append(f"only {authed} of {total} copies passed DKIM, DMARC and iprev")
scored = having("X-Spam-Status:")
filters = greylist = clean = 0
for line in open(log, errors="replace"):
    if " INFO filters " in line:
        filters += 1
        greylist += "greylist=" in line
        clean += "virus=clean" in line
if spam_on and scored != total:
    problems.append(f"only {scored} of {total} copies carry X-Spam-Status")
if not spam_on and scored:
    problems.append(f"{scored} copies carry X-Spam-Status without spam scoring")
want_filters = total if (spam_on or greylist_on or antivirus_on) else 0
for what, got, on in (("filters log lines", filters, spam_on or greylist_on or antivirus_on),
                      ("with greylist=", greylist, greylist_on), ("with virus=clean", clean, antivirus_on)):
    if got != (total if on else 0):
        problems.append(f"{total} copies but {got} {what}")
if spam_on and greylist_on and antivirus_on:
    row = c.execute("SELECT prefix FROM messages ORDER BY id LIMIT 1").fetchone()
    if row:
        open(sample, "wb").write(row[0])
if problems:
    sys.exit("; ".join(problems))
print(total)
PY
}

# measure NAME DIR MODE: one run from a fresh data directory; appends one result line.
measure() {
    local name=$1 dir=$2 mode=$3 l1 j0 f0 p0 c0 d0 q0 s0 t0 t1 j1 f1 p1 c1 d1 q1 s1 res n stored lines lq
    rm -rf "$dir" "$dir.log"
    start_facteur "$dir" "$mode"
    sync; sleep 1
    wait_quiet
    l1=$(load1)
    q0=$(dns_queries)
    lines=$(wc -l <"$work/dnsmasq.log")
    f0=$(flushes); s0=$(steal_jiffies); j0=$(busy_jiffies); p0=$(proc_jiffies "$facteur_pid")
    c0=$(proc_jiffies "$clam_pid"); d0=$(proc_jiffies "$dns_pid"); t0=$(date +%s.%N)
    timeout "$TIMEOUT" /usr/bin/time -f '%U %S' -o "$work/loadgen.time" \
        "$loadgen" mx --source "$client" "127.0.0.1:$port" "$helo" "$sender" "$CLIENTS" "$MESSAGES" "$DURATION" "$PER_CONN" \
        "$work/message.eml" "${users[@]}" >"$work/loadgen.out" 2>"$work/loadgen.err" ||
        echo "$name: load generator reported errors: $(head -3 "$work/loadgen.err")" >&2
    t1=$(date +%s.%N); j1=$(busy_jiffies); p1=$(proc_jiffies "$facteur_pid"); c1=$(proc_jiffies "$clam_pid")
    d1=$(proc_jiffies "$dns_pid"); s1=$(steal_jiffies); f1=$(flushes)
    q1=$(dns_queries)
    lq=$(list_queries "$lines")
    res=$(cat "$work/loadgen.out")
    n=$(printf '%s\n' "$res" | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
    [ -n "$n" ] || { echo "$name: no result: $(cat "$work/loadgen.err")" >&2; return 1; }
    stop_facteur
    grep -E ' (WARN|ERROR) ' "$dir.log" | sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -5 >&2 || true
    stored=$(verify "$dir" "$mode" "$n") || { echo "$name: $stored" >&2; exit 1; }
    # The DNS lists were asked about the client with the checks on, never without them.
    if has "$mode" checks && [ "$lists_asked" = true ] && [ "$lq" -eq 0 ]; then
        echo "$name: dnsmasq logged no query to bl.bench.test or wl.bench.test about $client" >&2; exit 1
    fi
    if ! has "$mode" checks && [ "$lq" -ne 0 ]; then
        echo "$name: $lq DNS list queries without the checks" >&2; exit 1
    fi
    if [ "$mode" = on ] && [ ! -e "$work/sample" ]; then
        cp "$dir.sample" "$work/sample"
        grep -m1 ' filters' "$dir.log" | sed -E 's/^[^ ]+ +//' >"$work/sample.log" || true
        tail -n +"$((lines + 1))" "$work/dnsmasq.log" | grep -m2 -E "query\[A\] $rev\.(bl|wl)\.bench\.test" >>"$work/sample.log" || true
    fi
    rm -rf "$dir"
    results+=("$(/usr/bin/python3 - "$name" "$res" "$t0" "$t1" "$j0" "$j1" "$p0" "$p1" "$c0" "$c1" "$d0" "$d1" "$hz" \
        "$(tail -1 "$work/loadgen.time")" "$((f1 - f0))" "$((q1 - q0))" "$lq" "$stored" "$l1" "$ncpu" "$((s1 - s0))" <<'PY'
import sys
name, res, t0, t1, j0, j1, p0, p1, c0, c1, d0, d1, hz, gen, fl, q, lq, stored, l1, ncpu, steal = sys.argv[1:]
r = dict(kv.split("=", 1) for kv in res.split())
n, secs, hz = int(r["messages"]), float(t1) - float(t0), int(hz)
per = lambda seconds: seconds * 1000 / max(n, 1)
busy = (int(j1) - int(j0)) / hz
gen_cpu = sum(float(x) for x in gen.split())
dns_cpu = (int(d1) - int(d0)) / hz
facteur_cpu = (int(p1) - int(p0)) / hz
clamd_cpu = (int(c1) - int(c0)) / hz
# Server CPU: the machine's busy time but the load generator's and the DNS server's (facteur,
# clamd, the kernel's networking and disk work).
cpu = busy - gen_cpu - dns_cpu
# The machine's busy time none of them spent: the kernel's networking in interrupts, and any
# other work (a compile) that ran meanwhile.
rest = (busy - gen_cpu - dns_cpu - facteur_cpu - clamd_cpu) / (secs * int(ncpu)) * 100
steal = int(steal) / hz / (secs * int(ncpu)) * 100   # taken by the hypervisor
print(f"{name:<23} {n:>8} {int(stored):>8} {float(r['seconds']):>8.2f} {float(r['msg_per_s']):>7.0f} "
      f"{float(r['p50_ms']):>7.2f} {float(r['p99_ms']):>7.2f} {per(cpu):>7.3f} {per(facteur_cpu):>9.3f} {per(clamd_cpu):>8.3f} "
      f"{per(gen_cpu):>7.3f} {per(dns_cpu):>7.3f} {int(q) / max(n, 1):>9.3f} {int(lq):>7} {int(fl) / max(n, 1):>8.3f} "
      f"{r['errors']:>6} {l1:>6} {rest:>6.1f} {steal:>7.1f}")
PY
)")
    echo "${results[-1]}" >&2
}
header() {
    printf '%-23s %8s %8s %8s %7s %7s %7s %7s %9s %8s %7s %7s %9s %7s %8s %6s %6s %6s %7s\n' mode messages stored seconds msg/s \
        p50-ms p99-ms cpu-ms facteur-ms clamd-ms gen-ms dns-ms dns-q/msg list-q flushes errors load1 rest-% steal-%
}

# measure_until_quiet NAME MODE: a run; again (at most RETRIES times) while other work took
# more than MAX_REST % of the machine during it, the disturbed rows marked NAME*.
measure_until_quiet() {
    local name=$1 mode=$2 tries=0
    while :; do
        measure "$name" "$work/$name" "$mode"
        awk -v r="$(awk '{print $18}' <<<"${results[-1]}")" -v m="$MAX_REST" 'BEGIN{exit !(r > m)}' || return 0
        results[-1]="$(printf '%-23s' "$name*") ${results[-1]:24}"
        [ "$tries" -lt "$RETRIES" ] || return 0
        tries=$((tries + 1))
        echo "$name: other work took more than $MAX_REST % of the CPU; again" >&2
    done
}

header >&2
results=()
for r in $(seq "$RUNS"); do
    for mode in $MODES; do measure_until_quiet "$mode" "$mode"; done
done

if [ -n "$PROFILE" ]; then
    # One more run of each, not in the table: perf slows the server down.
    mkdir -p "$PROFILE"
    for mode in $MODES; do
        dir=$work/profile-$mode
        rm -rf "$dir"
        start_facteur "$dir" "$mode"
        wait_quiet
        # DWARF unwinding: the release build keeps line tables but no frame pointers.
        perf record -F 299 -g --call-graph dwarf,16384 -p "$facteur_pid" -o "$PROFILE/perf-$mode.data" \
            2>"$PROFILE/perf-$mode.log" &
        perf_pid=$!
        # clamd too, in a profile of its own.
        clam_perf=
        if has "$mode" antivirus; then
            perf record -F 299 -g --call-graph dwarf,16384 -p "$clam_pid" -o "$PROFILE/perf-clamd-$mode.data" \
                2>"$PROFILE/perf-clamd-$mode.log" &
            clam_perf=$!
        fi
        sleep 1
        "$loadgen" mx --source "$client" "127.0.0.1:$port" "$helo" "$sender" "$CLIENTS" "$MESSAGES" "$DURATION" "$PER_CONN" \
            "$work/message.eml" "${users[@]}" >"$PROFILE/loadgen-$mode.out" 2>&1 || true
        kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
        if [ -n "$clam_perf" ]; then
            kill -INT "$clam_perf"; wait "$clam_perf" 2>/dev/null || true
            perf report -i "$PROFILE/perf-clamd-$mode.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null \
                >"$PROFILE/self-clamd-$mode.txt" || true
            perf report -i "$PROFILE/perf-clamd-$mode.data" --children --sort symbol -g none --stdio 2>/dev/null \
                >"$PROFILE/inclusive-clamd-$mode.txt" || true
        fi
        stop_facteur
        # Flat (self time by library and function), and inclusive (time under each function).
        perf report -i "$PROFILE/perf-$mode.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null \
            >"$PROFILE/self-$mode.txt" || true
        perf report -i "$PROFILE/perf-$mode.data" --children --sort symbol -g none --stdio 2>/dev/null \
            >"$PROFILE/inclusive-$mode.txt" || true
        perf report -i "$PROFILE/perf-$mode.data" --no-children --sort comm -g none --stdio 2>/dev/null \
            >"$PROFILE/threads-$mode.txt" || true
        rm -rf "$dir"
    done
    echo "profiles in $PROFILE (perf report -i $PROFILE/perf-on.data)" >&2
fi

[ "${#results[@]}" -gt 0 ] || exit 0
echo
echo "Protection: $MESSAGES messages of $(wc -c <"$work/message.eml") bytes (DKIM-signed; [auth] on in every mode), $CLIENTS clients, $PER_CONN per connection, $USERS accounts (Bayes trained: $(ls "$corpus"/spam/train-*.eml | wc -l) spam, $(ls "$corpus"/ham/train-*.eml | wc -l) ham); client $client; DNS TTL ${DNS_TTL}s; greylist skip_authenticated = $GREYLIST_SKIP_AUTH; clamd's temporary files on $(findmnt -no FSTYPE -T "$clamtmp"); FACTEUR_LOG=$FACTEUR_LOG"
header
printf '%s\n' "${results[@]}"
if [ -e "$work/sample" ]; then
    echo
    echo "A copy as stored with the protections on (its prefix), its filters log line, the DNS lists' queries:"
    tr -d '\r' <"$work/sample"
    cat "$work/sample.log"
fi
echo "facteur spam check --account ${users[0]} on the message, after the training:"
grep -E '^(Bayes|Score)' "$work/bayes.txt"
echo
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
modes = list(dict.fromkeys(r[0].rstrip("*") for r in rows))
def mean(c, k):
    # The undisturbed runs (rows marked * are not), or all of them when every one was.
    v = [float(r[k]) for r in rows if r[0] == c] or [float(r[k]) for r in rows if r[0] == c + "*"]
    return sum(v) / len(v)
base = "off" if "off" in modes else modes[0]
off = mean(base, 4)
for mode in (m for m in modes if m != base):
    on = mean(mode, 4)
    cost = (off - on) / off * 100
    verdict = "under" if cost < 25 else "NOT under"
    print(f"{mode} against {base}: msg/s, mean of the runs: {off:.0f} -> {on:.0f}: {cost:.1f} % of throughput ({verdict} 25 %)")
    for k, what in ((7, "server CPU"), (8, "facteur CPU"), (9, "clamd CPU")):
        a, b = mean(base, k), mean(mode, k)
        rel = f" ({(b - a) / a * 100:+.0f} %)" if a > 0 else ""
        print(f"    {what} ms/msg: {a:.3f} -> {b:.3f}: {b - a:+.3f} ms{rel}")
'
