#!/usr/bin/env bash
# Outbound delivery: facteur's queue hands mail submitted by a local account to Postfix peers
# (Debian's package, private instances on loopback, never the system one).
#   peer MX   Postfix with STARTTLS offered (smtpd_tls_security_level = may, a certificate from a
#             CA made here) and virtual mailboxes for remote.test and dns.test. facteur reaches
#             it through `queue.transports` (remote.test) and through an MX lookup (dns.test: a
#             DNS responder written below answers MX dns.test -> mx.dns.test, A -> 127.0.0.1,
#             `queue.smtp_port` = the peer's port). The message arrives byte for byte under
#             facteur's Received line and Postfix's ESMTPS one; Postfix logs the TLS session.
#   550       bad@remote.test is not in the virtual mailbox table: `550 5.1.1`; the sender gets a
#             DSN in her INBOX (multipart/report, Status 5.1.1, the reply explained).
#   450       grey@remote.test gets `450 4.7.0 Greylisted`: `facteur queue list` shows the
#             deferral explained; the restriction is removed (`postfix reload`), `facteur queue
#             retry --all`, and it is delivered.
#   down      down.test goes to a closed port: the message stays queued; `queue hold` stops the
#             attempts, `release` + `retry` resumes them, `delete` removes one without a DSN,
#             `bounce` returns another to the sender with a DSN.
#   smarthost facteur restarted with `[queue.smarthost]`: a second Postfix on its own port,
#             STARTTLS required, SASL AUTH through Dovecot's auth socket, smtpd_tls_auth_only,
#             relaying to smtp-sink. A wrong password in password_file keeps the message queued
#             with `535` explained in `facteur queue show`; with the right one (restart, `queue
#             retry --all`) it goes through: the relay logs TLS and the SASL login, the sink
#             holds the message. Its domain (nodns.example) has no DNS at all.
# The retry schedule is an hour (`retry_secs = [3600]`), so every retry seen here is the one
# `facteur queue retry` asked for; `scan_secs = 1`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need postfix postfix || exit 77
apt_need smtp-sink postfix || exit 77
apt_need dovecot dovecot-core || exit 77
apt_need openssl openssl || exit 77
work=$(new_workdir)
pf=$work/peer      # the peer MX
rl=$work/relay     # the smarthost
dv=$work/dovecot
pid= dns_pid= sink_pid=
cleanup() {
    postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
    postfix -c "$rl/etc" stop >/dev/null 2>&1 || true
    [ -f "$dv/dovecot.conf" ] && dovecot -c "$dv/dovecot.conf" stop >/dev/null 2>&1 || true
    for p in $pid $dns_pid $sink_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- peer postfix log"; tail -15 "$pf/maillog" 2>/dev/null || true
    echo "--- relay postfix log"; tail -15 "$rl/maillog" 2>/dev/null || true
    echo "--- facteur log"; tail -25 "$work/facteur.log" 2>/dev/null || true
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Certificates: a CA made here, and a certificate for relay.example.test and IP 127.0.0.1
# (facteur verifies the smarthost's for the host in `queue.smarthost.host`).
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=facteur interop CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$work/tls/ca.key" -out "$work/tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=relay.example.test" \
    -keyout "$work/tls/key.pem" -out "$work/tls/req.pem" 2>/dev/null
printf 'subjectAltName=DNS:relay.example.test,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/tls/ext"
openssl x509 -req -in "$work/tls/req.pem" -CA "$work/tls/ca.pem" -CAkey "$work/tls/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/tls/ext" -out "$work/tls/cert.pem" 2>/dev/null
chmod 644 "$work/tls/"*.pem

# ---------------------------------------------------------------------------------------------
# A DNS responder on loopback (UDP): MX dns.test -> mx.dns.test, A mx.dns.test -> 127.0.0.1, no
# AAAA; every other name does not exist. Each question is logged.
dns=$(free_port)
cat >"$work/dns.py" <<'PY'
import socket, struct, sys
port, log = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
A, MX, AAAA = 1, 15, 28
def name(labels):
    return b"".join(bytes([len(l)]) + l.encode() for l in labels.split(".")) + b"\0"
ZONE = {("dns.test", MX): struct.pack(">H", 10) + name("mx.dns.test"),
        ("mx.dns.test", A): socket.inet_aton("127.0.0.1")}
KNOWN = {n for n, _ in ZONE}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
while True:
    q, peer = s.recvfrom(4096)
    try:
        tid, flags = struct.unpack(">HH", q[:4])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode().lower()); i += 1 + q[i]
        qname, (qtype, qclass) = ".".join(labels), struct.unpack(">HH", q[i + 1:i + 5])
        question = q[12:i + 5]
    except Exception:
        continue
    rdata = ZONE.get((qname, qtype))
    rcode = 0 if qname in KNOWN else 3  # NXDOMAIN
    log.write(f"{qname} {qtype} rcode={rcode} answer={rdata is not None}\n")
    head = struct.pack(">HHHHHH", tid, 0x8400 | (flags & 0x0100) | rcode, 1, 1 if rdata else 0, 0, 0)
    answer = (b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 60, len(rdata)) + rdata) if rdata else b""
    s.sendto(head + question + answer, peer)
PY
python3 "$work/dns.py" "$dns" "$work/dns.log" &
dns_pid=$!

# ---------------------------------------------------------------------------------------------
# The peer MX: virtual mailboxes (Maildirs) for rcpt@remote.test, grey@remote.test, rcpt@dns.test.
peer=$(free_port)
mkdir -p "$pf/mail"
chown nobody:nogroup "$pf/mail"
private_postfix "$pf" "$peer" "" "unused.invalid=error:unused" "
virtual_mailbox_domains = remote.test, dns.test
virtual_mailbox_base = $pf/mail
virtual_mailbox_maps = inline:{ rcpt@remote.test=rcpt/, grey@remote.test=grey/, rcpt@dns.test=dnsrcpt/ }
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_tls_security_level = may
smtpd_tls_cert_file = $work/tls/cert.pem
smtpd_tls_key_file = $work/tls/key.pem
smtpd_tls_loglevel = 1
smtpd_recipient_restrictions = check_recipient_access inline:{ { grey@remote.test = 450 4.7.0 Greylisted, please try again later } }
maillog_file = $pf/maillog
maillog_file_prefixes = $work" || fail "could not set up the peer Postfix"
postfix -c "$pf/etc" start >/dev/null 2>&1 || fail "peer postfix did not start: $(postfix -c "$pf/etc" start 2>&1 | tail -3)"
wait_port "$peer" || fail "peer postfix is not listening"

# ---------------------------------------------------------------------------------------------
# facteur: alice@example.test submits over plaintext AUTH on loopback.
sub=$(free_port); down=$(free_port)
write_config() {  # write_config [SMARTHOST_TOML]
    cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = []
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = ["127.0.0.1:$sub"]
submissions = []
http = []
[submission]
plaintext_auth = true
auth_failure_delay_ms = 10
[dns]
nameservers = ["127.0.0.1:$dns"]
timeout_secs = 2
attempts = 1
[queue]
retry_secs = [3600]
scan_secs = 1
smtp_port = $peer
transports = { "remote.test" = "127.0.0.1:$peer", "down.test" = "127.0.0.1:$down" }
${1:-}
CONF
}
write_config
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null
pass='alice pass'
printf '%s\n' "$pass" | f account add alice@example.test --password-stdin >/dev/null
start_facteur() {
    "$bin" --config "$work/facteur.toml" serve 2>>"$work/facteur.log" &
    pid=$!
    wait_port "$sub" || fail "facteur did not start"
}
stop_facteur() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
start_facteur

# send NAME RCPT... : submits $work/NAME.eml as alice; prints the queue id from `250 ... queued as ID`.
send() {
    local name=$1
    shift
    python3 - "$sub" "$pass" "$work/$name.eml" "$name" "$@" <<'PY'
import smtplib, sys
port, password, path, name, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
body = "\r\n".join([
    "From: Alice <alice@example.test>", "To: " + ", ".join(f"<{r}>" for r in rcpts), f"Subject: outbound {name}",
    "Date: Mon, 23 Nov 2026 10:00:00 +0000", f"Message-ID: <outbound-{name}@example.test>",
    "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
    "", "Grüße von facteur.", ".leading dot", "x" * 998, "", "end", ""]).encode()
open(path, "wb").write(body)
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example.test")
s.login("alice@example.test", password)
s.mail("alice@example.test", ["BODY=8BITMIME"])
for r in rcpts:
    code, reply = s.rcpt(r)
    assert code == 250, (r, code, reply)
code, reply = s.data(body)
assert code == 250, (code, reply)
s.quit()
print(reply.decode().split()[-1])
PY
}
# qhas PATTERN QUEUE_ARGS...: `facteur queue QUEUE_ARGS` succeeds and prints PATTERN (its output is
# kept in $work/q.out; never piped into grep -q, which would close the pipe under it).
qhas() {
    local pat=$1
    shift
    f queue "$@" >"$work/q.out" 2>&1 && grep -q -- "$pat" "$work/q.out"
}
# wait_log ID WORD [SECONDS]: until facteur logged event WORD for queue id ID.
wait_log() {
    local n=$((${3:-20} * 10))
    for _ in $(seq "$n"); do
        grep -E "queue_id=$1( |$)" "$work/facteur.log" | grep -q -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
# maildir_count DIR: messages delivered into the peer's Maildir DIR.
maildir_count() { find "$pf/mail/$1/new" -type f 2>/dev/null | wc -l; }
wait_maildir() {  # wait_maildir DIR COUNT
    for _ in $(seq 200); do [ "$(maildir_count "$1")" -ge "$2" ] && return 0; sleep 0.1; done
    return 1
}
# The original message under the trace lines: Return-Path, X-Original-To, Delivered-To, Received
# (any number).
strip_trace() {
    python3 - "$1" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
while True:
    m = re.match(rb"(?s)(Return-Path|X-Original-To|Delivered-To|Received):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", data)
    if not m:
        break
    data = data[m.end():]
sys.stdout.buffer.write(data)
PY
}

# ---------------------------------------------------------------------------------------------
# 1. Delivery through the transport and through the MX lookup, over STARTTLS.
id_ok=$(send ok rcpt@remote.test) || fail "submission of 'ok'"
id_mx=$(send mx rcpt@dns.test) || fail "submission of 'mx'"
wait_maildir rcpt 1 || fail "the message to rcpt@remote.test did not arrive"
wait_maildir dnsrcpt 1 || fail "the message to rcpt@dns.test (MX) did not arrive"
for id in "$id_ok" "$id_mx"; do
    wait_log "$id" 'removed from the queue' || fail "$id: no 'removed from the queue' in the log"
    grep -E "queue_id=$id( |$)" "$work/facteur.log" | grep ' sent ' | grep -Eq '250 2.0.0 Ok: ([0-9]+ bytes )?queued as' || fail "$id: no 'sent' with Postfix's 250 in the log"
done
grep -q '^dns.test 15 rcode=0 answer=True' "$work/dns.log" || fail "facteur did not ask the MX of dns.test: $(cat "$work/dns.log")"
grep -q '^mx.dns.test 1 rcode=0 answer=True' "$work/dns.log" || fail "facteur did not ask the address of mx.dns.test"
for pair in "ok:rcpt" "mx:dnsrcpt"; do
    name=${pair%%:*} dir=${pair#*:}
    file=$(find "$pf/mail/$dir/new" -type f | head -1)
    strip_trace "$file" >"$work/$name.received"
    cmp "$work/$name.eml" "$work/$name.received" || fail "$name: the delivered message differs from the submitted one"
    python3 - "$file" <<'PY' || fail "$name: trace headers: $(grep -A2 '^Received' "$file" | head -12)"
import email, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
received = [" ".join(r.split()) for r in msg.get_all("Received")]
assert len(received) == 2, received
postfix, facteur = received
assert "by relay.example.test (Postfix) with ESMTPS" in postfix and "from mx.example.test" in postfix, postfix
# ESMTPA: authenticated, without TLS on loopback (plaintext_auth; RFC 3848).
assert "by mx.example.test" in facteur and "with ESMTPA " in facteur, facteur
assert "127.0.0.1" not in facteur and "client.example.test" not in facteur, facteur
PY
done
[ "$(grep -cE 'Anonymous TLS connection established from localhost\[127.0.0.1\]: TLSv1\.3' "$pf/maillog")" -ge 2 ] ||
    fail "the peer Postfix logged no TLS 1.3 session for both deliveries"
grep -q "to=<rcpt@dns.test>, relay=virtual, .*status=sent" "$pf/maillog" || fail "Postfix did not deliver rcpt@dns.test"

# ---------------------------------------------------------------------------------------------
# 2. A recipient refused with 550 5.1.1 (and one accepted in the same message): a DSN for alice.
id_bad=$(send bad bad@remote.test rcpt@remote.test) || fail "submission of 'bad'"
wait_log "$id_bad" 'bounce sent to the sender' || fail "$id_bad: no bounce sent"
wait_log "$id_bad" 'removed from the queue' || fail "$id_bad: not removed from the queue"
grep -E "queue_id=$id_bad( |$)" "$work/facteur.log" | grep ' bounced ' | grep -q '550 5.1.1' || fail "$id_bad: no 'bounced' with 550 5.1.1 in the log"
wait_maildir rcpt 2 || fail "the accepted recipient of 'bad' did not get it"
export_inbox() {
    rm -rf "$work/alice"
    f mailbox export alice@example.test INBOX --out "$work/alice" >/dev/null
}
# check_dsn QUEUE_ID RCPT STATUS TEXT...: the one DSN in alice's INBOX about QUEUE_ID.
check_dsn() {
    export_inbox
    python3 - "$work/alice" "$@" <<'PY'
import email, email.policy, glob, sys
folder, queue_id, rcpt, status, texts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
found = []
for path in glob.glob(folder + "/*.eml"):
    msg = email.message_from_binary_file(open(path, "rb"), policy=email.policy.default)
    if msg.get_content_type() != "multipart/report":
        continue
    parts = list(msg.iter_parts())
    ds = parts[1]
    raw = ds.as_bytes().decode()
    if f"X-Facteur-Queue-ID: {queue_id}" not in raw:
        continue
    found.append(msg)
assert len(found) == 1, f"{len(found)} DSNs about {queue_id}"
msg = found[0]
assert msg.get_param("report-type") == "delivery-status", msg["Content-Type"]
assert msg["Subject"] == "Undelivered Mail Returned to Sender", msg["Subject"]
assert msg["To"].strip("<>") == "alice@example.test", msg["To"]
assert "MAILER-DAEMON@mx.example.test" in msg["From"], msg["From"]
human, ds, original = msg.iter_parts()
assert human.get_content_type() == "text/plain"
assert ds.get_content_type() == "message/delivery-status"
assert original.get_content_type() in ("text/rfc822-headers", "message/rfc822")
text = human.get_content()
raw = ds.as_bytes().decode()
for want in (f"Final-Recipient: rfc822; {rcpt}", "Action: failed", f"Status: {status}", "Reporting-MTA: dns; mx.example.test"):
    assert want in raw, (want, raw)
assert f"<{rcpt}>:" in text and "What it means:" in text, text
for t in texts:
    assert t in text or t in raw, (t, text, raw)
orig = original.as_bytes().decode(errors="replace")
assert f"Message-ID: <outbound-" in orig, orig
print(text)
PY
}
check_dsn "$id_bad" bad@remote.test 5.1.1 "The recipient's address does not exist" \
    "The server 127.0.0.1 [127.0.0.1]:$peer (TLS) answered: 550 5.1.1 <bad@remote.test>: Recipient address rejected: User unknown" \
    "Remote-MTA: dns; 127.0.0.1" "Diagnostic-Code: smtp; 550 5.1.1 <bad@remote.test>" >"$work/dsn-bad.txt" 2>&1 ||
    fail "DSN for $id_bad: $(cat "$work/dsn-bad.txt")"
grep -q 'rcpt@remote.test' "$work/dsn-bad.txt" && fail "the DSN names the recipient that was delivered"

# ---------------------------------------------------------------------------------------------
# 3. Greylisting: 450 4.7.0, explained in `queue list`; then the restriction goes, a retry works.
id_grey=$(send grey grey@remote.test) || fail "submission of 'grey'"
wait_log "$id_grey" deferred || fail "$id_grey: not deferred"
f queue list >"$work/list-grey" || fail "queue list"
grep -A3 "^$id_grey " "$work/list-grey" >"$work/list-grey-1" || fail "$id_grey not in the queue: $(cat "$work/list-grey")"
grep -q '<grey@remote.test> queued after 1 attempt(s), next try' "$work/list-grey-1" || fail "queue list, state: $(cat "$work/list-grey-1")"
grep -q '450 4.7.0 <grey@remote.test>: Recipient address rejected: Greylisted, please try again later' "$work/list-grey-1" || fail "queue list, reply: $(cat "$work/list-grey-1")"
grep -q -- '-> Greylisted' "$work/list-grey-1" || fail "queue list, explanation: $(cat "$work/list-grey-1")"
sleep 2   # a scan or two: the hour-long schedule keeps it waiting
[ "$(maildir_count grey)" = 0 ] || fail "greylisted message delivered"
postconf -c "$pf/etc" -e 'smtpd_recipient_restrictions =' || fail postconf
postfix -c "$pf/etc" reload >/dev/null 2>&1 || fail "postfix reload"
# A reload leaves running smtpd processes on the old restrictions; facteur keeps a connection
# idle up to 5 s for the next message (queue::pool): let it expire so the retry meets a new one.
sleep 6
qhas '^1 recipient(s) will be tried' retry --all || fail "queue retry --all did not count 1 recipient"
wait_maildir grey 1 || fail "after the reload and retry, the greylisted message did not arrive"
wait_log "$id_grey" 'removed from the queue' || fail "$id_grey: not removed"
qhas 'The queue is empty.' list || fail "queue not empty: $(cat "$work/q.out")"

# ---------------------------------------------------------------------------------------------
# 4. A destination that is down: hold, release, delete, bounce.
id_d1=$(send down1 someone@down.test) || fail "submission of 'down1'"
id_d2=$(send down2 someone@down.test) || fail "submission of 'down2'"
wait_log "$id_d1" deferred || fail "$id_d1: not deferred"
wait_log "$id_d2" deferred || fail "$id_d2: not deferred"
f queue show "$id_d1" >"$work/show-d1" || fail "queue show"
grep -q "via .*127.0.0.1.*:$down" "$work/show-d1" || fail "queue show, host: $(cat "$work/show-d1")"
grep -qi 'refused' "$work/show-d1" || fail "queue show, no 'refused': $(cat "$work/show-d1")"
grep -q 'Retried: yes' "$work/show-d1" || fail "queue show, no explanation: $(cat "$work/show-d1")"
attempts() { f queue show "$1" >"$work/attempts.out"; grep -c '^  [A-Z][a-z][a-z], .* <someone@down.test>  via ' "$work/attempts.out"; }
[ "$(attempts "$id_d1")" = 1 ] || fail "$id_d1: $(attempts "$id_d1") attempts, want 1"
qhas "is held" hold "$id_d1" || fail "queue hold"
qhas "^$id_d1 .*(held)" list || fail "queue list does not say held: $(cat "$work/q.out")"
qhas '^held: *yes' show "$id_d1" || fail "queue show does not say held"
f queue retry --all >/dev/null
sleep 3
[ "$(attempts "$id_d1")" = 1 ] || fail "$id_d1 was tried while held"
[ "$(attempts "$id_d2")" = 2 ] || fail "$id_d2 was not retried: $(attempts "$id_d2") attempts"
qhas "is released" release "$id_d1" || fail "queue release"
f queue retry "$id_d1" >/dev/null
for _ in $(seq 50); do [ "$(attempts "$id_d1")" = 2 ] && break; sleep 0.1; done
[ "$(attempts "$id_d1")" = 2 ] || fail "$id_d1 not tried after release: $(attempts "$id_d1") attempts"
export_inbox; before=$(ls "$work/alice" | wc -l)
qhas 'deleted; the sender was not told' delete "$id_d1" || fail "queue delete"
f queue show "$id_d1" >/dev/null 2>&1 && fail "$id_d1 still in the queue after delete"
qhas 'bounced: the sender gets a delivery report' bounce "$id_d2" || fail "queue bounce"
f queue show "$id_d2" >/dev/null 2>&1 && fail "$id_d2 still in the queue after bounce"
qhas 'The queue is empty.' list || fail "queue not empty: $(cat "$work/q.out")"
check_dsn "$id_d2" someone@down.test 5.0.0 "returned to the sender by the administrator" >"$work/dsn-d2.txt" 2>&1 ||
    fail "DSN for $id_d2: $(cat "$work/dsn-d2.txt")"
export_inbox
[ "$(ls "$work/alice" | wc -l)" = $((before + 1)) ] || fail "alice's INBOX: want exactly one more message (the bounce of $id_d2, none for the deleted $id_d1)"
f queue hold NOSUCHID >/dev/null 2>&1 && fail "queue hold of an unknown id succeeded"

# ---------------------------------------------------------------------------------------------
# 5. The smarthost: Dovecot for SASL, a relay Postfix (STARTTLS required, AUTH only inside TLS),
# smtp-sink behind it.
sink=$(free_port); relay=$(free_port)
mkdir -p "$work/sink" "$dv/run"
chown nobody "$work/sink"
smtp-sink -u nobody -d "$work/sink/%Y%m%d%H%M%S." -c "127.0.0.1:$sink" 100 >"$work/sink.log" 2>&1 &
sink_pid=$!
printf 'relayuser:{PLAIN}relay secret\n' >"$dv/passwd"
cat >"$dv/dovecot.conf" <<CONF
protocols = none
listen = 127.0.0.1
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = $dv/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service auth {
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
CONF
dovecot -c "$dv/dovecot.conf" || fail "dovecot did not start: $(tail -5 "$dv/dovecot.log" 2>/dev/null)"
for _ in $(seq 100); do [ -S "$dv/run/auth-postfix" ] && break; sleep 0.1; done
[ -S "$dv/run/auth-postfix" ] || fail "no Dovecot auth socket"
private_postfix "$rl" "$relay" "" "nodns.example=smtp:[127.0.0.1]:$sink" "
smtpd_tls_security_level = encrypt
smtpd_tls_cert_file = $work/tls/cert.pem
smtpd_tls_key_file = $work/tls/key.pem
smtpd_tls_loglevel = 1
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $dv/run/auth-postfix
smtpd_relay_restrictions = permit_sasl_authenticated, reject
maillog_file = $rl/maillog
maillog_file_prefixes = $work" || fail "could not set up the relay Postfix"
postfix -c "$rl/etc" start >/dev/null 2>&1 || fail "relay postfix did not start: $(postfix -c "$rl/etc" start 2>&1 | tail -3)"
wait_port "$relay" || fail "relay postfix is not listening"
wait_port "$sink" || fail "smtp-sink is not listening"

# First with a wrong password: the message stays queued, 535 explained.
printf 'wrong secret\n' >"$work/relay-password"
chmod 600 "$work/relay-password"
stop_facteur
write_config "[queue.smarthost]
host = \"127.0.0.1:$relay\"
tls = \"starttls\"
username = \"relayuser\"
password_file = \"$work/relay-password\"
ca_file = \"$work/tls/ca.pem\""
start_facteur
id_sh=$(send smarthost someone@nodns.example) || fail "submission of 'smarthost'"
wait_log "$id_sh" deferred || fail "$id_sh: not deferred with the wrong password"
f queue show "$id_sh" >"$work/show-sh" || fail "queue show"
grep -q 'reply: .*535 5.7.8' "$work/show-sh" || fail "queue show lacks the 535: $(cat "$work/show-sh")"
grep -q "via .*127.0.0.1.*$relay" "$work/show-sh" || fail "queue show lacks the relay: $(cat "$work/show-sh")"
grep -q '^    535 5.7.8: ' "$work/show-sh" || fail "queue show does not explain the 535: $(cat "$work/show-sh")"
grep -qi 'password\|credentials' "$work/show-sh" || fail "queue show's explanation names no password: $(cat "$work/show-sh")"
grep -q 'Retried: yes, the recipient is still queued' "$work/show-sh" || fail "queue show calls the deferred 535 final: $(cat "$work/show-sh")"
grep -q 'authentication failed' "$rl/maillog" || fail "the relay logged no failed authentication"
[ -z "$(ls "$work/sink")" ] || fail "the sink got a message with the wrong password"
# Then the right one: restart (the password file is read at start), retry.
printf 'relay secret\n' >"$work/relay-password"
stop_facteur
start_facteur
qhas '^1 recipient(s)' retry --all || fail "queue retry --all (smarthost)"
wait_log "$id_sh" 'removed from the queue' 20 || fail "$id_sh: not delivered through the smarthost"
for _ in $(seq 100); do [ -n "$(ls "$work/sink")" ] && break; sleep 0.1; done
sunk=$(grep -l 'Message-ID: <outbound-smarthost@example.test>' "$work/sink/"* 2>/dev/null | head -1)
[ -n "$sunk" ] || fail "the sink has not got the message: $(ls "$work/sink")"
grep -q 'Subject: outbound smarthost' "$sunk" || fail "the sink's copy lacks the Subject"
grep -q 'by relay.example.test (Postfix) with ESMTPSA' "$sunk" || fail "the relay's Received line does not say ESMTPSA: $(grep -A2 Received "$sunk" | head)"
grep -q 'by mx.example.test' "$sunk" || fail "facteur's Received line is missing at the sink"
grep -qE 'TLS connection established from localhost\[127.0.0.1\]: TLSv1\.3' "$rl/maillog" || fail "the relay logged no TLS session"
grep -q 'sasl_method=PLAIN, sasl_username=relayuser' "$rl/maillog" || fail "the relay logged no SASL login"
grep -q "to=<someone@nodns.example>, relay=127.0.0.1\[127.0.0.1\]:$sink, .*status=sent" "$rl/maillog" || fail "the relay did not pass it to the sink"
grep -q 'nodns.example' "$work/dns.log" && fail "facteur asked DNS about nodns.example despite the smarthost"
qhas 'The queue is empty.' list || fail "queue not empty: $(cat "$work/q.out")"
f store check >/dev/null || fail "store check"
echo "outbound interop ok: Postfix peer over STARTTLS (transport and MX), 550 5.1.1 DSN, 450 greylisting then retry, hold/release/delete/bounce, smarthost with SASL (535 explained, then delivered)"
