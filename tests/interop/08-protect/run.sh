#!/usr/bin/env bash
# facteur's MX and submission with the filters admins already run, all real Debian daemons on
# loopback ports: ClamAV's clamd (a test-only signature database: the EICAR file's MD5, no
# download) refuses EICAR with 554 5.7.1; SpamAssassin's spamd as the spam engine refuses
# GTUBE (550 5.7.1) and tags clean mail with its score; OpenDKIM in milter mode signs what
# submission accepts (its DKIM-Signature lands in the delivered copy); swaks is the client.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need swaks swaks || exit 77
apt_need clamd clamav-daemon || exit 77
apt_need spamd spamd spamassassin || exit 77
apt_need opendkim opendkim || exit 77
apt_need opendkim-genkey opendkim-tools || exit 77

work=$(new_workdir)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    for l in clamd spamd opendkim facteur; do echo "--- $l"; tail -15 "$work/$l.log" 2>/dev/null || true; done
    exit 1
}
step() { echo "-- $*"; }
mx=$(free_port); sub=$(free_port); clam=$(free_port); spam=$(free_port); milter=$(free_port)

step "clamd with a test-only database"
mkdir -p "$work/clamdb" "$work/clamtmp"
# The EICAR test file, assembled here so that this script is not taken for it.
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$work/eicar.com"
sum=$(md5sum "$work/eicar.com" | cut -d' ' -f1)
[ "$sum" = 44d88612fea8a8f36de82e1278abb02f ] || fail "EICAR file assembled wrongly ($sum)"
echo "$sum:68:Eicar-Test-Signature" >"$work/clamdb/test.hdb"
cat >"$work/clamd.conf" <<CONF
Foreground yes
DatabaseDirectory $work/clamdb
TemporaryDirectory $work/clamtmp
TCPSocket $clam
TCPAddr 127.0.0.1
PidFile $work/clamd.pid
CONF
clamd --config-file="$work/clamd.conf" >"$work/clamd.log" 2>&1 &
pids+=($!)

step "spamd with the rules Debian ships"
mkdir -p "$work/sahome"
spamd -L -x --syslog=stderr --max-children=2 --listen="127.0.0.1:$spam" \
    --helper-home-dir="$work/sahome" -u nobody >"$work/spamd.log" 2>&1 &
pids+=($!)

step "OpenDKIM as a milter, signing for example.test"
mkdir -p "$work/dkim"
opendkim-genkey -D "$work/dkim" -d example.test -s milter
cat >"$work/opendkim.conf" <<CONF
Mode s
Domain example.test
Selector milter
KeyFile $work/dkim/milter.private
Socket inet:$milter@127.0.0.1
Background no
Syslog no
InternalHosts 127.0.0.1
RequireSafeKeys no
CONF
opendkim -f -x "$work/opendkim.conf" >"$work/opendkim.log" 2>&1 &
pids+=($!)

wait_port "$clam" || fail "clamd did not start"
wait_port "$milter" || fail "opendkim did not start"
for _ in $(seq 300); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$spam),1)" 2>/dev/null && break; sleep 0.1; done

cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = ["127.0.0.1:$mx"]
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = []
submission = ["127.0.0.1:$sub"]
submissions = []
http = []
[dns]
nameservers = ["127.0.0.1:9"]
[auth]
enabled = false
[dkim]
sign = false
[antivirus]
clamd = "127.0.0.1:$clam"
[spam]
engine = "spamd"
spamd_address = "127.0.0.1:$spam"
timeout_secs = 60
[milter]
submission = ["inet:$milter@127.0.0.1"]
CONF
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null
printf 'secret\n' | f account add alice@example.test --password-stdin >/dev/null
printf 'secret\n' | f account add bob@example.test --password-stdin >/dev/null
"$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pids+=($!)
wait_port "$mx" || fail "facteur did not start"

step "EICAR on the MX: refused with 554 5.7.1 naming the signature"
out=$(swaks --server 127.0.0.1 --port "$mx" --from sender@remote.test --to alice@example.test \
    --attach "@$work/eicar.com" --attach-type application/octet-stream 2>&1 || true)
echo "$out" | grep -q '554 5.7.1 Virus found: Eicar-Test-Signature' || fail "EICAR not refused: $(echo "$out" | tail -5)"

step "GTUBE on the MX: spamd scores 1000, refused with 550 5.7.1"
gtube='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
out=$(swaks --server 127.0.0.1 --port "$mx" --from sender@remote.test --to alice@example.test \
    --body "$gtube" 2>&1 || true)
echo "$out" | grep -q '550 5.7.1 Message refused as spam' || fail "GTUBE not refused: $(echo "$out" | tail -5)"

step "clean mail on the MX: scanned, scored by spamd, delivered with its X-Spam fields"
swaks --server 127.0.0.1 --port "$mx" --from sender@remote.test --to alice@example.test \
    --header "Subject: lunch" --body "Shall we meet at noon by the library?" >/dev/null \
    || fail "clean mail refused"
rm -rf "$work/out" && f mailbox export alice@example.test INBOX --out "$work/out" >/dev/null
msg=$(cat "$work"/out/* 2>/dev/null)
echo "$msg" | grep -q '^X-Spam-Status: No, score=' || fail "no spamd X-Spam-Status: $msg"
grep -q 'virus=clean' "$work/facteur.log" || fail "no virus scan logged"

step "submission through the OpenDKIM milter: the delivered copy carries its signature"
swaks --server 127.0.0.1 --port "$sub" -tls --auth PLAIN --auth-user alice@example.test \
    --auth-password secret --from alice@example.test --to bob@example.test \
    --header "Subject: signed by the milter" --body "hello bob" >/dev/null \
    || fail "submission refused"
rm -rf "$work/out" && f mailbox export bob@example.test INBOX --out "$work/out" >/dev/null
msg=$(cat "$work"/out/* 2>/dev/null)
echo "$msg" | grep -q '^DKIM-Signature: .*d=example.test' \
    || echo "$msg" | tr -d '\r' | awk '/^DKIM-Signature:/{f=1} f' | grep -q 'd=example.test' \
    || fail "no DKIM-Signature from the milter: $msg"
echo "$msg" | tr -d '\r' | awk '/^DKIM-Signature:/{f=1} f' | grep -q 's=milter' || fail "not the milter's selector: $msg"
grep -q 'milter inet:' "$work/facteur.log" || fail "no milter result logged"
echo "OK"
