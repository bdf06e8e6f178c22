#!/usr/bin/env bash
# swaks delivers to facteur's MX over plain SMTP and over STARTTLS; what is stored is the
# original message, byte for byte, under the fields facteur adds (Return-Path,
# Delivered-To, the X-Spam-* fields of its spam scoring, Received). Unknown users and other
# domains are refused with 550.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need swaks swaks || exit 77
work=$(new_workdir)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
smtp=$(free_port)
cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = ["127.0.0.1:$smtp"]
lmtp = []
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
printf 'secret\n' | f account add alice@example.test --password-stdin >/dev/null
"$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pid=$!
wait_port "$smtp"
fail() { echo "FAIL: $*"; tail -20 "$work/facteur.log"; exit 1; }

# The message: 8-bit text, a leading dot, a long line, CRLF line endings.
python3 - >"$work/message.eml" <<'PY'
import sys
lines = [
    "From: Sender <sender@remote.test>", "To: Alice <alice@example.test>", "Subject: interop",
    "Date: Mon, 23 Nov 2026 10:00:00 +0000", "Message-ID: <swaks-interop@remote.test>",
    "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
    "", "Bonjour, voilà du courrier.", ".a line starting with a dot", "x" * 990, "end",
]
# swaks ends DATA with CRLF.CRLF after the file: the file has no final CRLF, the message does.
sys.stdout.buffer.write("\r\n".join(lines).encode())
PY
{ cat "$work/message.eml"; printf '\r\n'; } >"$work/expected.eml"

# Strips the leading trace headers facteur adds, keeping the original message.
strip_trace() {
    python3 - "$1" <<'PY'
import sys, re
data = open(sys.argv[1], "rb").read()
def field(name):
    return re.match(rb"(?s)" + name + rb":[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", data)
# Return-Path, Delivered-To, the spam filter's X-Spam-* fields (MX only), then Received.
for name in (b"Return-Path", b"Delivered-To", b"X-Spam-[A-Za-z-]+", b"Received"):
    m = field(name)
    # The X-Spam-* fields come from the MX's spam scoring only (not over LMTP).
    assert m or name.startswith(b"X-Spam"), (name, data[:200])
    while m:
        data = data[m.end():]
        m = name.startswith(b"X-Spam") and field(name)
sys.stdout.buffer.write(data)
PY
}

n=0
for mode in plain tls; do
    n=$((n + 1))
    args=(--server "127.0.0.1:$smtp" --from sender@remote.test --to alice@example.test --data "@$work/message.eml")
    [ "$mode" = tls ] && args+=(--tls)
    swaks "${args[@]}" >"$work/swaks-$mode.log" 2>&1 || fail "swaks $mode: $(tail -5 "$work/swaks-$mode.log")"
    grep -q '250 2.0.0 Ok: queued as' "$work/swaks-$mode.log" || fail "swaks $mode: no 250"
    rm -rf "$work/out"
    f mailbox export alice@example.test INBOX --out "$work/out" >/dev/null
    stored="$work/out/$n.eml"
    strip_trace "$stored" >"$work/original-$mode.eml"
    cmp "$work/expected.eml" "$work/original-$mode.eml" || fail "$mode: stored message differs from what swaks sent"
    head -c 400 "$stored" | grep -q '^Return-Path: <sender@remote.test>' || fail "$mode: Return-Path"
    grep -q '^Delivered-To: alice@example.test' "$stored" || fail "$mode: Delivered-To"
    if [ "$mode" = tls ]; then
        grep -q 'with ESMTPS id' "$stored" || fail "tls: Received lacks ESMTPS"
        grep -q '(using TLSv1\.[23] with cipher ' "$stored" || fail "tls: Received lacks the TLS version and cipher"
    else
        grep -q 'with ESMTP id' "$stored" || fail "plain: Received lacks ESMTP"
    fi
done

# Refusals, as swaks reports them.
swaks --server "127.0.0.1:$smtp" --from s@remote.test --to nobody@example.test >"$work/unknown.log" 2>&1 && fail "unknown user accepted"
grep -q '550 5.1.1' "$work/unknown.log" || fail "unknown user: $(grep '<\*\*' "$work/unknown.log")"
swaks --server "127.0.0.1:$smtp" --from s@remote.test --to victim@elsewhere.test >"$work/relay.log" 2>&1 && fail "relay accepted"
grep -q '550 5.7.1' "$work/relay.log" || fail "relay: $(grep '<\*\*' "$work/relay.log")"

f store check >/dev/null || fail "store check"
echo "swaks interop ok"
