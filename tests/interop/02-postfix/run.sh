#!/usr/bin/env bash
# Postfix (Debian's package, a private instance on loopback) as the MTA in front of facteur:
# it relays into facteur over LMTP and, for a second domain, over SMTP with STARTTLS. What
# facteur stores is the injected message, byte for byte, under the trace headers Postfix and
# facteur add.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need postfix postfix || exit 77
work=$(new_workdir)
pf="$work/postfix"
pid=
cleanup() {
    postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- postfix log"; tail -20 "$pf/maillog" 2>/dev/null || true
    echo "--- facteur log"; tail -20 "$work/facteur.log"
    exit 1
}

# facteur: example.test reached over LMTP, example.org over SMTP.
smtp=$(free_port); lmtp=$(free_port); relay=$(free_port)
cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = ["127.0.0.1:$smtp"]
lmtp = ["127.0.0.1:$lmtp"]
pop3 = []
pop3s = []
imap = []
imaps = []
submission = []
submissions = []
http = []
# Nothing leaves the machine: DNS to a closed loopback port, and the MX's SPF/DKIM/DMARC
# checks (which would only wait for it) off; 07-auth tests them with a DNS server.
[dns]
nameservers = ["127.0.0.1:9"]
[auth]
enabled = false
CONF
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null
f domain add example.org >/dev/null
printf 'secret\n' | f account add alice@example.test --password-stdin >/dev/null
printf 'secret\n' | f account add bob@example.org --password-stdin >/dev/null
"$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pid=$!
wait_port "$smtp" || fail "facteur did not start"

# A private Postfix: own config, queue and data directories; never /etc/postfix's instance.
private_postfix "$pf" "$relay" "example.test, example.org" \
    "example.test=lmtp:inet:127.0.0.1:$lmtp, example.org=smtp:[127.0.0.1]:$smtp" \
    "smtp_tls_security_level = may
smtp_tls_loglevel = 1
maillog_file = $pf/maillog
maillog_file_prefixes = $work" || fail "could not set up Postfix"
postfix -c "$pf/etc" check >/dev/null 2>&1 || true
postfix -c "$pf/etc" start >/dev/null 2>&1 || fail "postfix did not start: $(postfix -c "$pf/etc" start 2>&1 | tail -3)"
wait_port "$relay" || fail "postfix is not listening"

# Messages with Message-ID and Date, so Postfix adds nothing but its Received line.
python3 - "$relay" "$work" <<'PY'
import smtplib, sys
port, work = int(sys.argv[1]), sys.argv[2]
for name, rcpt in (("lmtp", "alice@example.test"), ("smtp", "bob@example.org")):
    body = "\r\n".join([
        "From: Sender <sender@remote.test>", f"To: <{rcpt}>", f"Subject: through postfix over {name}",
        "Date: Mon, 23 Nov 2026 10:00:00 +0000", f"Message-ID: <postfix-{name}@remote.test>",
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
        "", "Grüße aus dem Postfach.", ".leading dot", "y" * 998, "", "end", ""]).encode()
    open(f"{work}/{name}.eml", "wb").write(body)
    s = smtplib.SMTP("127.0.0.1", port)
    s.ehlo("client.remote.test")
    s.sendmail("sender@remote.test", [rcpt], body, mail_options=["BODY=8BITMIME"])
    s.quit()
PY

# Postfix delivers asynchronously: wait (bounded) until both arrived and its queue is empty.
for _ in $(seq 300); do
    a=$(f mailbox list alice@example.test | awk -F'\t' '$1=="INBOX"{print $2}')
    b=$(f mailbox list bob@example.org | awk -F'\t' '$1=="INBOX"{print $2}')
    [ "$a" = messages=1 ] && [ "$b" = messages=1 ] && break
    sleep 0.1
done
[ "$a" = messages=1 ] || fail "LMTP delivery did not arrive ($a)"
[ "$b" = messages=1 ] || fail "SMTP delivery did not arrive ($b)"
for _ in $(seq 100); do
    postqueue -c "$pf/etc" -p 2>/dev/null | grep -q 'Mail queue is empty' && break
    sleep 0.1
done
grep -q "to=<alice@example.test>, relay=127.0.0.1\[127.0.0.1\]:$lmtp.*status=sent (250 2.1.5 <alice@example.test> delivered as" "$pf/maillog" || fail "Postfix log lacks the LMTP delivery"
grep -q "to=<bob@example.org>, relay=127.0.0.1\[127.0.0.1\]:$smtp.*status=sent (250 2.0.0 Ok: queued as" "$pf/maillog" || fail "Postfix log lacks the SMTP delivery"
grep -qE "(Trusted|Untrusted|Anonymous) TLS connection established to 127.0.0.1\[127.0.0.1\]:$smtp: TLSv1\.[23]" "$pf/maillog" || fail "Postfix logged no TLS connection to facteur"

strip_trace() {
    python3 - "$1" <<'PY'
import sys, re
data = open(sys.argv[1], "rb").read()
def field(name):
    return re.match(rb"(?s)" + name + rb":[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", data)
# Return-Path, Delivered-To, the spam filter's X-Spam-* fields (MX only), then Received twice.
for name in (b"Return-Path", b"Delivered-To", b"X-Spam-[A-Za-z-]+", b"Received", b"Received"):
    m = field(name)
    # The X-Spam-* fields come from the MX's spam scoring only (not over LMTP).
    assert m or name.startswith(b"X-Spam"), (name, data[:200])
    while m:
        data = data[m.end():]
        m = name.startswith(b"X-Spam") and field(name)
sys.stdout.buffer.write(data)
PY
}
f mailbox export alice@example.test INBOX --out "$work/alice" >/dev/null
f mailbox export bob@example.org INBOX --out "$work/bob" >/dev/null
strip_trace "$work/alice/1.eml" >"$work/alice.original"
strip_trace "$work/bob/1.eml" >"$work/bob.original"
cmp "$work/lmtp.eml" "$work/alice.original" || fail "LMTP: stored message differs from the injected one"
cmp "$work/smtp.eml" "$work/bob.original" || fail "SMTP: stored message differs from the injected one"
grep -q 'with LMTP id' "$work/alice/1.eml" || fail "LMTP Received line"
grep -q 'by relay.example.test (Postfix)' "$work/alice/1.eml" || fail "Postfix's Received line"
grep -q 'with ESMTPS id' "$work/bob/1.eml" || fail "Postfix did not use STARTTLS towards facteur"
f store check >/dev/null || fail "store check"
echo "postfix interop ok: LMTP and SMTP (STARTTLS) relays, byte for byte"
