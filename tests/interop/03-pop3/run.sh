#!/usr/bin/env bash
# POP3 interop: real clients retrieve from facteur over pop3 (STLS) and pop3s.
#   python poplib (full session), curl pop3:// (STLS) and pop3s://, fetchmail (keep and
#   delete), getmail6 (delete after retrieval). Counts and bytes are checked on both sides.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need fetchmail fetchmail || exit 77
apt_need getmail getmail6 || exit 77
apt_need curl curl || exit 77
work=$(new_workdir)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

smtp=$(free_port); pop3=$(free_port); pop3s=$(free_port)
cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = ["127.0.0.1:$smtp"]
lmtp = []
pop3 = ["127.0.0.1:$pop3"]
pop3s = ["127.0.0.1:$pop3s"]
imap = []
imaps = []
submission = []
submissions = []
http = []
[pop3]
auth_failure_delay_ms = 10
# Nothing leaves the machine: DNS to a closed loopback port, and the MX's SPF/DKIM/DMARC
# checks (which would only wait for it) off; 07-auth tests them with a DNS server.
[dns]
nameservers = ["127.0.0.1:9"]
[auth]
enabled = false
CONF
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null
for u in alice bob carol; do printf 's3cret pass\n' | f account add "$u@example.test" --password-stdin >/dev/null; done
"$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pid=$!
wait_port "$pop3s"

fail() { echo "FAIL: $*"; echo "--- facteur log"; tail -30 "$work/facteur.log"; exit 1; }

# Mail for everyone over SMTP: 5 messages each, with a leading-dot line to exercise stuffing.
python3 - "$smtp" <<'PY'
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]))
for user in ("alice", "bob", "carol"):
    for i in range(5):
        s.sendmail("sender@remote.test", [f"{user}@example.test"],
                   f"From: sender@remote.test\r\nSubject: {user} {i}\r\nMessage-ID: <{user}{i}@remote.test>\r\n\r\n.leading dot {i}\r\nbody\r\n".encode())
s.quit()
PY

# 1. poplib over STLS: a whole session, checked against what the store exports.
f mailbox export alice@example.test INBOX --out "$work/alice-store" >/dev/null
timeout 60 python3 - "$pop3" "$work/alice-store" <<'PY' || fail "poplib session"
import poplib, ssl, sys, os
port, store = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3("127.0.0.1", port)
caps = p.capa()
assert "STLS" in caps and "USER" not in caps, caps
p.stls(ctx)
assert "USER" in p.capa()
p.user("alice@example.test"); p.pass_("s3cret pass")
count, size = p.stat()
assert count == 5, count
uids = [l.split()[1] for l in p.uidl()[1]]
assert len(set(uids)) == 5
for n in range(1, 6):
    resp, lines, octets = p.retr(n)
    got = b"\r\n".join(lines) + b"\r\n"
    want = open(os.path.join(store, f"{n}.eml"), "rb").read()
    assert got == want, (n, got, want)
    assert octets - 2 * 0 >= len(want)
hdr = p.top(1, 0)[1]
assert any(l.startswith(b"Subject: alice 0") for l in hdr) and hdr[-1] == b"", hdr
p.dele(1); p.rset(); p.dele(5)
p.quit()
print("poplib ok")
PY
[ "$(f mailbox list alice@example.test | awk -F'\t' '$1=="INBOX"{print $2}')" = "messages=4" ] || fail "poplib DELE 5 did not expunge"

# 2. curl: list over pop3:// with STLS required, and retrieve over pop3s://.
list=$(curl -sS -m 30 --ssl-reqd -k "pop3://127.0.0.1:$pop3/" -u 'bob@example.test:s3cret pass') || fail "curl pop3 list"
[ "$(printf '%s\n' "$list" | grep -c .)" = 5 ] || fail "curl pop3 listed: $list"
curl -sS -m 30 -k "pop3s://127.0.0.1:$pop3s/2" -u 'bob@example.test:s3cret pass' -o "$work/bob-2.eml" || fail "curl pop3s retr"
grep -q '^Subject: bob 1' "$work/bob-2.eml" || fail "curl pop3s retrieved the wrong message"
grep -q '^\.leading dot 1' "$work/bob-2.eml" || fail "curl pop3s: dot-stuffing not undone"
if curl -sS -m 30 -k "pop3s://127.0.0.1:$pop3s/" -u 'bob@example.test:wrong' >/dev/null 2>&1; then fail "curl logged in with a wrong password"; fi
grep -q 'auth failed service=pop3 remote=127.0.0.1 user=bob@example.test' "$work/facteur.log" || fail "no auth failure line"

# 3. fetchmail over pop3s: keep, then fetch again with delete (flush).
mkdir -p "$work/fm"
cat >"$work/fm-deliver" <<SH
#!/bin/sh
cat > "$work/fm/\$\$.eml"
SH
chmod +x "$work/fm-deliver"
cat >"$work/fetchmailrc" <<RC
set no bouncemail
poll 127.0.0.1 service $pop3s protocol pop3 uidl
  user "bob@example.test" there with password "s3cret pass" is "bob" here
  options ssl no sslcertck
  mda "$work/fm-deliver"
RC
chmod 600 "$work/fetchmailrc"
timeout 60 fetchmail -f "$work/fetchmailrc" -i "$work/fetchids" --keep --nosyslog >"$work/fetchmail.log" 2>&1 || [ $? = 1 ] || fail "fetchmail keep: $(cat "$work/fetchmail.log")"
[ "$(ls "$work/fm" | wc -l)" = 5 ] || fail "fetchmail kept: $(ls "$work/fm" | wc -l) messages"
[ "$(f mailbox list bob@example.test | awk -F'\t' '$1=="INBOX"{print $2}')" = "messages=5" ] || fail "fetchmail --keep removed mail"
rm -f "$work/fm"/* "$work/fetchids"
timeout 60 fetchmail -f "$work/fetchmailrc" -i "$work/fetchids" --nokeep --nosyslog >"$work/fetchmail.log" 2>&1 || fail "fetchmail delete: $(cat "$work/fetchmail.log")"
[ "$(ls "$work/fm" | wc -l)" = 5 ] || fail "fetchmail fetched: $(ls "$work/fm" | wc -l)"
[ "$(f mailbox list bob@example.test | awk -F'\t' '$1=="INBOX"{print $2}')" = "messages=0" ] || fail "fetchmail did not delete"
grep -h '^Subject:' "$work/fm"/*.eml | sort | tr '\n' ' ' | grep -q 'bob 0 Subject: bob 1 Subject: bob 2 Subject: bob 3 Subject: bob 4' || fail "fetchmail messages differ"

# 4. getmail6 over pop3s (it has no STLS), delete after retrieval, into a Maildir.
mkdir -p "$work/gm/Maildir"/{cur,new,tmp} "$work/gm/state"
cat >"$work/gm/getmailrc" <<RC
[retriever]
type = SimplePOP3SSLRetriever
server = 127.0.0.1
port = $pop3s
username = carol@example.test
password = s3cret pass

[destination]
type = Maildir
path = $work/gm/Maildir/

[options]
delete = true
read_all = true
verbose = 0
RC
chown -R nobody "$work/gm"   # getmail refuses to deliver as root
timeout 60 runuser -u nobody -- getmail --getmaildir "$work/gm/state" --rcfile "$work/gm/getmailrc" >"$work/getmail.log" 2>&1 || fail "getmail: $(cat "$work/getmail.log")"
[ "$(ls "$work/gm/Maildir/new" | wc -l)" = 5 ] || fail "getmail retrieved $(ls "$work/gm/Maildir/new" | wc -l)"
[ "$(f mailbox list carol@example.test | awk -F'\t' '$1=="INBOX"{print $2}')" = "messages=0" ] || fail "getmail did not delete"

f store check >/dev/null || fail "store inconsistent after POP3 clients"
echo "pop3 interop: poplib, curl, fetchmail, getmail6 ok"
