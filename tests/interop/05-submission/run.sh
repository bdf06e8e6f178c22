#!/usr/bin/env bash
# Submission interop: real mail clients send through facteur's submission (587-style, STARTTLS
# then AUTH) and submissions (465-style, implicit TLS) roles; the http role answers their
# autoconfiguration requests.
#   swaks    STARTTLS and implicit TLS, every SASL mechanism in MECHS, to a local recipient (read
#            back over imaps), to a remote one (250 and in the outbound queue), and the refusals:
#            wrong password 535 5.7.8, no AUTH 530 5.7.0, no AUTH before STARTTLS, someone
#            else's MAIL FROM or From: 553 5.7.1; subaddress, alias and application password ok
#   msmtp    STARTTLS (auth plain and login) and implicit TLS, certificate and name verified
#   s-nail   smtp:// with smtp-use-starttls and smtps://, certificate and name verified
#   smtplib  SMTP + starttls + login and SMTP_SSL + login, send_message; Date and Message-ID
#            added, no client address in Received; the raw refusals before TLS and AUTH
#   curl     smtp:// --ssl-reqd and smtps://, --cacert with the real name (--connect-to); OAuth
#            bearer tokens (--oauth2-bearer) over XOAUTH2 and OAUTHBEARER, signed by a test
#            issuer's Ed25519 key (openssl) that facteur reads from a JWKS file
#   autoconfig  Thunderbird's two paths (schema elements, configured ports), unknown domain 404,
#            Outlook Autodiscover POX, unknown path 404
# Clients connect to 127.0.0.1 and verify the self-signed certificate for mx.example.test
# wherever they can (swaks checks the chain only).
#
# SASL: MECHS lists the mechanisms tested, each with every client that has it (swaks_mechs,
# msmtp_mechs, curl_mechs, the python MECHANISMS table: one function per mechanism); a client
# maps a name to its own option in one place (swaks_mech, msmtp_mech, curl_mech). A new mechanism
# is a word in MECHS and in the lists of the clients that speak it. CRAM-MD5 is enabled in the
# configuration ([directory] cram_md5); XOAUTH2/OAUTHBEARER are tested with curl (section 5).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"
MECHS=${MECHS:-PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256}
swaks_mechs="PLAIN LOGIN CRAM-MD5"
msmtp_mechs="PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256"   # SCRAM through GNU SASL, which Debian's msmtp links
curl_mechs="PLAIN LOGIN CRAM-MD5"
# The words of $1 that are also in $2.
both() { local w; for w in $1; do case " $2 " in *" $w "*) echo "$w" ;; esac; done; }

apt_need swaks swaks || exit 77
apt_need msmtp msmtp || exit 77
apt_need s-nail s-nail || exit 77
apt_need curl curl || exit 77
apt_need openssl openssl || exit 77
perl -MDigest::HMAC_MD5 -e1 2>/dev/null || apt_need /nonexistent libdigest-hmac-perl || exit 77   # swaks' CRAM-MD5
work=$(new_workdir)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

sub=$(free_port); subs=$(free_port); imaps=$(free_port); http=$(free_port)
# The OAuth issuer: an Ed25519 key; facteur gets its public half as a JWK Set (RFC 7517, 8037).
openssl genpkey -algorithm ed25519 -out "$work/issuer.key" 2>/dev/null
b64url() { python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'; }
x=$(openssl pkey -in "$work/issuer.key" -pubout -outform DER | tail -c 32 | b64url)
printf '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"test","x":"%s"}]}\n' "$x" >"$work/jwks.json"
chmod 644 "$work/jwks.json"
cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/data"
[listen]
smtp = []
lmtp = []
pop3 = []
pop3s = []
imap = []
imaps = ["127.0.0.1:$imaps"]
submission = ["127.0.0.1:$sub"]
submissions = ["127.0.0.1:$subs"]
http = ["127.0.0.1:$http"]
[submission]
auth_failure_delay_ms = 10
max_auth_failures = 10
[imap]
auth_failure_delay_ms = 10
[directory]
cram_md5 = true
[oauth]
issuer = "https://id.example.test"
audience = "mail.example.test"
jwks_file = "$work/jwks.json"
# Mail for other domains stays queued: its host refuses connections, and DNS goes nowhere
# (this test reaches nothing beyond loopback).
[queue]
retry_secs = [3600]
transports = { "remote.test" = "127.0.0.1:9" }
[dns]
nameservers = ["127.0.0.1:9"]
CONF
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null
pass='s3cret pass'
for u in alice bob; do printf '%s\n' "$pass" | f account add "$u@example.test" --password-stdin >/dev/null; done
f alias add info@example.test alice@example.test >/dev/null
app=$(f account app-password add alice@example.test phone | sed -n 's/^password: //p')
[ -n "$app" ] || { echo "FAIL: no application password printed"; exit 1; }
fail() { echo "FAIL: $*"; echo "--- facteur log"; tail -30 "$work/facteur.log"; exit 1; }
"$bin" --config "$work/facteur.toml" serve 2>"$work/facteur.log" &
pid=$!
for p in "$sub" "$subs" "$imaps" "$http"; do wait_port "$p" || fail "facteur did not listen on $p"; done
cert=$work/data/tls/self-signed.crt
[ -s "$cert" ] || fail "no certificate at $cert"
name=mx.example.test

# Python helpers, imported from $work:
#   mail.py get USER SUBJECT       -> the one message with this Subject in USER's INBOX (imaps),
#                                     raw on stdout; fails when there is none or more than one
#   mail.py queued ADDRESS         -> recipients of ADDRESS in the outbound queue, and their state
# and, imported: connect_smtp/connect_smtps (certificate verified for mx.example.test while
# connecting to 127.0.0.1) and MECHANISMS (SASL name -> function authenticating an SMTP object).
cat >"$work/mail.py" <<'PY'
import base64, email, hashlib, hmac, imaplib, os, smtplib, socket, sqlite3, ssl, sys, time
HOST = "127.0.0.1"
NAME = "mx.example.test"
CERT = os.environ["CERT"]

def context():
    return ssl.create_default_context(cafile=CERT)  # verifies the chain and NAME

class _To127:
    """Connects to 127.0.0.1 whatever the host name, which stays the TLS server name."""
    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((HOST, port), timeout)
        if isinstance(self, smtplib.SMTP_SSL):
            sock = self.context.wrap_socket(sock, server_hostname=NAME)
        return sock

class SMTP(_To127, smtplib.SMTP): pass
class SMTP_SSL(_To127, smtplib.SMTP_SSL): pass

def connect_smtp(port):
    """SMTP on the submission port, before STARTTLS."""
    s = SMTP(NAME, port, timeout=30)
    s.ehlo("client.example.test")
    return s

def connect_smtps(port):
    s = SMTP_SSL(NAME, port, timeout=30, context=context())
    s.ehlo("client.example.test")
    return s

# SASL mechanisms, one function each: (smtp, user, password) -> (code, reply). Add new ones here.
def auth_plain(s, user, password):
    return s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()).decode())

def auth_login(s, user, password):
    code, reply = s.docmd("AUTH", "LOGIN")
    if code != 334:
        return code, reply
    code, reply = s.docmd(base64.b64encode(user.encode()).decode())
    if code != 334:
        return code, reply
    return s.docmd(base64.b64encode(password.encode()).decode())

def auth_cram_md5(s, user, password):
    code, reply = s.docmd("AUTH", "CRAM-MD5")
    if code != 334:
        return code, reply
    digest = hmac.HMAC(password.encode(), base64.b64decode(reply), "md5").hexdigest()
    return s.docmd(base64.b64encode(f"{user} {digest}".encode()).decode())

def auth_scram_sha_256(s, user, password):
    """RFC 5802/7677, no channel binding; the server's signature is checked."""
    b64 = lambda b: base64.b64encode(b).decode()
    nonce = b64(os.urandom(18))
    bare = "n=" + user.replace("=", "=3D").replace(",", "=2C") + ",r=" + nonce
    code, reply = s.docmd("AUTH", "SCRAM-SHA-256 " + b64(("n,," + bare).encode()))
    if code != 334:
        return code, reply
    first = base64.b64decode(reply).decode()
    attrs = dict(kv.split("=", 1) for kv in first.split(","))
    if not attrs["r"].startswith(nonce):
        return 0, b"server nonce does not extend the client's: " + first.encode()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    final = "c=biws,r=" + attrs["r"]
    message = f"{bare},{first},{final}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    code, reply = s.docmd(b64(f"{final},p={b64(proof)}".encode()))
    if code != 334:
        return code, reply
    want = "v=" + b64(hmac.new(hmac.new(salted, b"Server Key", "sha256").digest(), message, "sha256").digest())
    if base64.b64decode(reply).decode() != want:
        return 0, b"wrong server signature: " + reply
    return s.docmd("")

MECHANISMS = {"PLAIN": auth_plain, "LOGIN": auth_login, "CRAM-MD5": auth_cram_md5, "SCRAM-SHA-256": auth_scram_sha_256}

class _Imaps(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = socket.create_connection((HOST, self.port), timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=NAME)

def get(port, user, password, subject):
    m = _Imaps(NAME, int(port), ssl_context=context(), timeout=30)
    m.login(user, password)
    for _ in range(50):  # delivery is done when 250 is sent; a little slack all the same
        m.select("INBOX", readonly=True)
        typ, dat = m.search("UTF-8", "SUBJECT", f'"{subject}"')
        found = dat[0].split()
        if found:
            break
        time.sleep(0.1)
    if len(found) != 1:
        raise SystemExit(f"{len(found)} messages with Subject {subject!r} in {user}'s INBOX")
    typ, dat = m.fetch(found[0], "(BODY.PEEK[])")
    m.logout()
    return dat[0][1]

def queued(db, address):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    return c.execute("SELECT q.sender, q.submitter, r.state FROM queue q JOIN queue_recipients r ON r.queue_row = q.id"
                     " WHERE r.address = ? ORDER BY q.id", (address,)).fetchall()

if __name__ == "__main__":
    if sys.argv[1] == "get":
        sys.stdout.buffer.write(get(os.environ["IMAPS"], sys.argv[2], os.environ["PASS"], sys.argv[3]))
    elif sys.argv[1] == "queued":
        for row in queued(os.environ["DB"], sys.argv[2]):
            print("\t".join(str(x) for x in row))
PY
export CERT=$cert IMAPS=$imaps PASS=$pass DB=$work/data/facteur.db
# The message with this Subject in USER's INBOX (exactly one), into FILE: arrived USER SUBJECT FILE
arrived() { timeout 60 python3 "$work/mail.py" get "$1@example.test" "$2" >"$3" 2>"$3.err"; }
# Checks that a message sent by a client with this Subject reached USER, and its From: line.
check_arrived() {
    local user=$1 subject=$2 from=$3 out
    out="$work/got-$(echo "$subject" | tr -c 'A-Za-z0-9\n' _)"
    arrived "$user" "$subject" "$out" || fail "'$subject' did not reach $user: $(tail -1 "$out.err")"
    grep -qi "^From:.*$from" "$out" || fail "'$subject': From: is not $from: $(head -c 600 "$out")"
    grep -q "^Return-Path: <$from>" "$out" || fail "'$subject': Return-Path: $(grep -i '^Return-Path' "$out")"
}
queued() { python3 "$work/mail.py" queued "$1"; }
n=0   # numbers the Subjects: each check finds its own message

# ---------------------------------------------------------------------------------------------
# 1. swaks
swaks_mech() { echo "$1"; }   # swaks --auth takes the SASL names as they are
sw() {  # sw LOG ARGS...: swaks with the certificate verified; its output in $work/LOG
    local log=$work/$1
    shift
    swaks --tls-verify --tls-ca-path "$cert" --tls-sni "$name" --timeout 30 "$@" >"$log" 2>&1
}
# The server's replies in a swaks log, for failure messages.
replies() { grep -E '^<[~-]\*? +[0-9]{3}[ -]|^\*\*\*' "$work/$1" | tail -8; }
swaks_send() {  # swaks_send LOG SUBJECT ARGS...: a message that must be accepted
    local log=$1 subj=$2
    shift 2
    sw "$log" --h-Subject "$subj" "$@" || fail "swaks $log: exit $?: $(replies "$log")"
    grep -q '^<~  250 2.0.0 Ok: queued as' "$work/$log" || fail "swaks $log: no 250 after DATA: $(replies "$log")"
}
swaks_refused() {  # swaks_refused LOG REPLY ARGS...: the session must fail with REPLY
    local log=$1 want=$2
    shift 2
    if sw "$log" "$@"; then fail "swaks $log: accepted, wanted $want: $(replies "$log")"; fi
    grep -qE "^<[~-]\* +$want" "$work/$log" || fail "swaks $log: wanted $want: $(replies "$log")"
}
a=(--auth-user alice@example.test --auth-password "$pass" --from alice@example.test)

for mech in $(both "$MECHS" "$swaks_mechs"); do
    s="swaks starttls $mech ($((++n)))"
    swaks_send "starttls-$mech" "$s" --server "127.0.0.1:$sub" --tls --auth "$(swaks_mech "$mech")" "${a[@]}" --to bob@example.test
    grep -q "^<~  235 2.7.0" "$work/starttls-$mech" || fail "swaks $mech: no 235"
    check_arrived bob "$s" alice@example.test
    swaks_refused "wrong-$mech" '535 5.7.8' --server "127.0.0.1:$sub" --tls --auth "$(swaks_mech "$mech")" \
        --auth-user alice@example.test --auth-password wrong --from alice@example.test --to bob@example.test
done
s="swaks implicit TLS ($((++n)))"
swaks_send tlsc "$s" --server "127.0.0.1:$subs" --tlsc --auth PLAIN "${a[@]}" --to bob@example.test
grep -q '^=== TLS started with cipher' "$work/tlsc" || fail "swaks --tlsc: no TLS: $(head -5 "$work/tlsc")"
check_arrived bob "$s" alice@example.test

# A remote recipient: 250, and in the outbound queue (nothing is delivered out in this test);
# with a local one in the same message, the local copy is in the mailbox at once.
[ -z "$(queued someone@remote.test)" ] || fail "queue not empty at the start"
s="swaks remote ($((++n)))"
swaks_send remote "$s" --server "127.0.0.1:$sub" --tls --auth PLAIN "${a[@]}" --to someone@remote.test,bob@example.test
grep -q '^<~  250 2.1.5' "$work/remote" || fail "remote recipient: $(replies remote)"
got=$(queued someone@remote.test)
[ "$got" = "$(printf 'alice@example.test\talice@example.test\tqueued')" ] || fail "queue rows for someone@remote.test: '$got'"
[ -z "$(queued bob@example.test)" ] || fail "the local recipient was queued too: $(queued bob@example.test)"
check_arrived bob "$s" alice@example.test

# Refusals.
swaks_refused noauth '530 5.7.0' --server "127.0.0.1:$sub" --tls --from alice@example.test --to bob@example.test
swaks_refused noauth-implicit '530 5.7.0' --server "127.0.0.1:$subs" --tlsc --from alice@example.test --to bob@example.test
# Without STARTTLS, AUTH is not offered and swaks cannot authenticate (the raw 538 is in part 4).
if sw beforetls --server "127.0.0.1:$sub" --auth PLAIN "${a[@]}" --to bob@example.test; then fail "AUTH without TLS: $(replies beforetls)"; fi
grep -q '^<-  250-AUTH\|^<-  250 AUTH' "$work/beforetls" && fail "AUTH advertised before STARTTLS: $(replies beforetls)"
grep -q 'Host did not advertise authentication' "$work/beforetls" || fail "AUTH before STARTTLS: $(replies beforetls)"
grep -q '^ ~> AUTH\|^ -> AUTH' "$work/beforetls" && fail "swaks sent AUTH before STARTTLS"
swaks_refused other-sender '553 5.7.1' --server "127.0.0.1:$sub" --tls --auth PLAIN \
    --auth-user alice@example.test --auth-password "$pass" --from bob@example.test --to bob@example.test
swaks_refused other-from '553 5.7.1' --server "127.0.0.1:$subs" --tlsc --auth PLAIN "${a[@]}" \
    --h-From 'Bob <bob@example.test>' --to bob@example.test
grep -q '^<~  354' "$work/other-from" || fail "From: header refusal came before DATA: $(replies other-from)"
swaks_refused other-domain '553 5.7.1' --server "127.0.0.1:$sub" --tls --auth PLAIN \
    --auth-user alice@example.test --auth-password "$pass" --from alice@elsewhere.test --to someone@remote.test
# Her subaddress, an alias delivering to her, her application password.
s="swaks subaddress ($((++n)))"
swaks_send subaddress "$s" --server "127.0.0.1:$sub" --tls --auth PLAIN --auth-user alice@example.test \
    --auth-password "$pass" --from alice+lists@example.test --to bob@example.test
check_arrived bob "$s" alice+lists@example.test
s="swaks alias ($((++n)))"
swaks_send alias "$s" --server "127.0.0.1:$sub" --tls --auth PLAIN --auth-user alice@example.test \
    --auth-password "$pass" --from info@example.test --to bob@example.test
check_arrived bob "$s" info@example.test
for mech in $(both "$MECHS" "$swaks_mechs"); do
    s="swaks app password $mech ($((++n)))"
    swaks_send "app-$mech" "$s" --server "127.0.0.1:$subs" --tlsc --auth "$(swaks_mech "$mech")" \
        --auth-user alice@example.test --auth-password "$app" --from alice@example.test --to bob@example.test
    check_arrived bob "$s" alice@example.test
done
grep -qE 'authenticated.*user=alice@example.test (app_password="phone"|via=app-password:phone)' "$work/facteur.log" || fail "the application password login was not logged as such"
swaks_refused app-bob '535 5.7.8' --server "127.0.0.1:$sub" --tls --auth PLAIN \
    --auth-user bob@example.test --auth-password "$app" --from bob@example.test --to alice@example.test

# ---------------------------------------------------------------------------------------------
# 2. msmtp: STARTTLS on submission (one account per mechanism), implicit TLS on submissions.
msmtp_mech() { echo "$1" | tr 'A-Z' 'a-z'; }   # auth plain | login | cram-md5 | scram-sha-256 ...
{
    echo "defaults"
    echo "logfile $work/msmtp.log"
    echo "tls on"
    echo "tls_trust_file $cert"
    echo "host 127.0.0.1"
    echo "tls_host_override $name"
    echo "user alice@example.test"
    echo "password \"$pass\""
    echo "from alice@example.test"
    for mech in $(both "$MECHS" "$msmtp_mechs"); do
        printf '\naccount starttls-%s\nport %s\ntls_starttls on\nauth %s\n' "$mech" "$sub" "$(msmtp_mech "$mech")"
    done
    printf '\naccount implicit\nport %s\ntls_starttls off\nauth plain\n' "$subs"
    printf '\naccount wrongname\nport %s\ntls_starttls off\nauth plain\ntls_host_override wrong.example.test\n' "$subs"
} >"$work/msmtprc"
chmod 600 "$work/msmtprc"
msmtp_send() {  # msmtp_send ACCOUNT SUBJECT
    printf 'From: Alice <alice@example.test>\nTo: bob@example.test\nSubject: %s\n\nsent with msmtp\n' "$2" |
        timeout 60 msmtp -C "$work/msmtprc" -a "$1" bob@example.test >"$work/msmtp-$1.out" 2>&1
}
for account in $(for m in $(both "$MECHS" "$msmtp_mechs"); do echo "starttls-$m"; done) implicit; do
    s="msmtp $account ($((++n)))"
    msmtp_send "$account" "$s" || fail "msmtp $account: $(cat "$work/msmtp-$account.out"; tail -1 "$work/msmtp.log")"
    check_arrived bob "$s" alice@example.test
done
grep -q "smtpstatus=250 smtpmsg='250 2.0.0 Ok: queued as" "$work/msmtp.log" || fail "msmtp log: $(tail -2 "$work/msmtp.log")"
# The name is checked: the same certificate for another name is refused by msmtp.
if msmtp_send wrongname "msmtp wrong name"; then fail "msmtp accepted the certificate for another name"; fi
grep -qi 'certificate' "$work/msmtp-wrongname.out" || fail "msmtp wrong name: $(cat "$work/msmtp-wrongname.out")"

# ---------------------------------------------------------------------------------------------
# 3. s-nail, the way the tutorials use mail(1), v15 syntax. It resolves mx.example.test through a
# hosts file bind-mounted in a mount namespace of its own (the system's /etc/hosts is untouched),
# so it verifies the certificate for that name; without namespaces, 127.0.0.1 and no name check.
printf '127.0.0.1 %s\n' "$name" >"$work/hosts"
if unshare -m sh -c "mount --bind '$work/hosts' /etc/hosts && getent hosts $name" >/dev/null 2>&1; then
    snail_host=$name
    with_name() { unshare -m sh -c "mount --bind '$work/hosts' /etc/hosts && exec \"\$@\"" sh "$@"; }
    snail_tls=(-S "tls-ca-file=$cert" -S tls-ca-no-defaults)
else
    echo "note: no mount namespace; s-nail connects to 127.0.0.1 without checking the certificate's name"
    snail_host=127.0.0.1
    with_name() { "$@"; }
    snail_tls=(-S tls-verify=ignore)
fi
snail() {  # snail LOG SUBJECT URL [OPTIONS...]
    local log=$work/$1 subj=$2 url=$3
    shift 3
    echo "sent with s-nail" | HOME=$work with_name timeout 60 s-nail -n -v -S v15-compat -S sendwait -S "DEAD=$work/dead.letter" \
        -S ttycharset=utf-8 -S from=alice@example.test -S "mta=$url" -S smtp-auth=plain -S "password=$pass" \
        "${snail_tls[@]}" "$@" -s "$subj" bob@example.test >"$log" 2>&1
}
s="s-nail starttls ($((++n)))"
snail snail-starttls "$s" "smtp://alice%40example.test@$snail_host:$sub" -S smtp-use-starttls || fail "s-nail starttls: $(tail -5 "$work/snail-starttls")"
check_arrived bob "$s" alice@example.test
s="s-nail smtps ($((++n)))"
snail snail-smtps "$s" "smtps://alice%40example.test@$snail_host:$subs" || fail "s-nail smtps: $(tail -5 "$work/snail-smtps")"
check_arrived bob "$s" alice@example.test
[ "$snail_host" = 127.0.0.1 ] || grep -q 'TLS certificate ok' "$work/snail-smtps" || fail "s-nail did not verify the certificate: $(tail -5 "$work/snail-smtps")"
[ ! -e "$work/dead.letter" ] || fail "s-nail saved a dead letter"

# ---------------------------------------------------------------------------------------------
# 4. python smtplib.
export SUB=$sub SUBS=$subs MECHS WORK=$work
timeout 120 python3 - >"$work/smtplib.out" 2>&1 <<'PY' || fail "smtplib: $(tail -15 "$work/smtplib.out")"
import email.message, email.policy, email.utils, os, re, smtplib, sys
sys.path.insert(0, os.environ["WORK"])
from mail import connect_smtp, connect_smtps, context, get, MECHANISMS
sub, subs, password = int(os.environ["SUB"]), int(os.environ["SUBS"]), os.environ["PASS"]
user = "alice@example.test"
step = "start"
def check(cond, what):
    if not cond:
        print(f"{step}: {what}")
        sys.exit(1)

step = "before STARTTLS"
s = connect_smtp(sub)
check("starttls" in s.esmtp_features and "auth" not in s.esmtp_features, f"EHLO before TLS: {s.esmtp_features}")
for mech in os.environ["MECHS"].split():
    code, reply = s.docmd("AUTH", mech)
    check(code == 538 and reply.startswith(b"5.7.11"), f"AUTH {mech} before STARTTLS: {code} {reply}")
code, reply = s.docmd("MAIL", "FROM:<alice@example.test>")
check(code == 530 and reply.startswith(b"5.7.0"), f"MAIL before STARTTLS: {code} {reply}")
s.starttls(context=context())
s.ehlo("client.example.test")
advertised = s.esmtp_features.get("auth", "").upper().split()
for mech in os.environ["MECHS"].split():
    check(mech in advertised, f"{mech} not advertised after STARTTLS: {advertised}")
untested = [m for m in advertised if m not in os.environ["MECHS"].split()]
if untested:
    print(f"note: advertised but not in MECHS, not tested: {untested}")
code, reply = s.docmd("MAIL", "FROM:<alice@example.test>")
check(code == 530 and reply.startswith(b"5.7.0"), f"MAIL before AUTH: {code} {reply}")
s.quit()

def message(subject, **extra):
    """A message without Date or Message-ID, as a client that leaves them to the server."""
    m = email.message.EmailMessage(policy=email.policy.SMTP)
    m["From"] = "Alice <alice@example.test>"
    m["To"] = "Bob <bob@example.test>"
    m["Subject"] = subject
    for k, v in extra.items():
        m[k.replace("_", "-")] = v
    m.set_content("sent with smtplib\n")
    return m

def completed(subject):
    raw = get(os.environ["IMAPS"], "bob@example.test", password, subject)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check(msg["Date"] and email.utils.parsedate_to_datetime(msg["Date"]), f"no valid Date: {raw[:800]!r}")
    check(len(msg.get_all("Date")) == 1, "two Date fields")
    check(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", msg["Message-ID"] or ""), f"Message-ID {msg['Message-ID']!r}")
    received = msg.get_all("Received") or []
    check(received, f"no Received: {raw[:800]!r}")
    for r in received:
        check("127.0.0.1" not in r and "client.example.test" not in r, f"Received names the client: {r!r}")
    check(any("with ESMTPSA" in r for r in received), f"Received does not say ESMTPSA: {received}")
    check(msg["From"] == "Alice <alice@example.test>", f"From: {msg['From']!r}")
    return msg

n = 0
for mech, auth in MECHANISMS.items():
    if mech not in os.environ["MECHS"].split():
        continue
    n += 1
    step = f"STARTTLS + AUTH {mech}"
    s = connect_smtp(sub)
    s.starttls(context=context())
    s.ehlo("client.example.test")
    code, reply = auth(s, user, "wrong")
    check((code, reply[:5]) == (535, b"5.7.8"), f"wrong password: {code} {reply}")
    code, reply = auth(s, user, password)
    check(code == 235, f"{code} {reply}")
    subject = f"smtplib starttls {mech} {n}"
    s.send_message(message(subject))
    s.quit()
    completed(subject)

step = "STARTTLS + login()"
s = connect_smtp(sub)
s.starttls(context=context())
s.login(user, password)
s.send_message(message("smtplib login"))
s.quit()
completed("smtplib login")

step = "SMTP_SSL + login()"
s = connect_smtps(subs)
s.login(user, password)
# A message that has its own Date and Message-ID keeps them.
s.send_message(message("smtplib smtps", Date="Mon, 23 Nov 2026 10:00:00 +0000", Message_ID="<own.id@example.test>"))
try:
    s.send_message(message("smtplib spoof"), from_addr="bob@example.test")
    check(False, "MAIL FROM bob accepted for alice")
except smtplib.SMTPSenderRefused as e:
    check(e.smtp_code == 553 and e.smtp_error.startswith(b"5.7.1"), f"other sender: {e}")
s.quit()
msg = completed("smtplib smtps")
check(msg["Message-ID"] == "<own.id@example.test>" and msg["Date"] == "Mon, 23 Nov 2026 10:00:00 +0000",
      f"the client's own Date/Message-ID changed: {msg['Date']!r} {msg['Message-ID']!r}")
print("smtplib ok")
PY

# ---------------------------------------------------------------------------------------------
# 5. curl: smtp:// with STARTTLS required, smtps://, the certificate checked for its name.
curl_mech() { echo "AUTH=$1"; }   # curl --login-options
curl_send() {  # curl_send LOG SUBJECT URL PORT [OPTIONS...]
    local log=$work/$1 subj=$2 url=$3 port=$4
    shift 4
    printf 'From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: %s\r\n\r\nsent with curl\r\n' "$subj" >"$work/curl.eml"
    curl -sS -v -m 30 --cacert "$cert" --connect-to "$name:$port:127.0.0.1:$port" "$url" \
        --user "alice@example.test:$pass" --mail-from alice@example.test --mail-rcpt bob@example.test \
        --upload-file "$work/curl.eml" "$@" >"$log" 2>&1
}
for mech in $(both "$MECHS" "$curl_mechs"); do
    s="curl starttls $mech ($((++n)))"
    curl_send "curl-$mech" "$s" "smtp://$name:$sub" "$sub" --ssl-reqd --login-options "$(curl_mech "$mech")" ||
        fail "curl smtp:// $mech: $(grep -E '^[<*] ' "$work/curl-$mech" | tail -6)"
    grep -q "^> AUTH $mech" "$work/curl-$mech" || fail "curl did not use $mech: $(grep '^> AUTH' "$work/curl-$mech")"
    check_arrived bob "$s" alice@example.test
done
s="curl smtps ($((++n)))"
curl_send curl-smtps "$s" "smtps://$name:$subs" "$subs" || fail "curl smtps://: $(grep -E '^[<*] ' "$work/curl-smtps" | tail -6)"
check_arrived bob "$s" alice@example.test
if curl_send curl-wrong "curl wrong" "smtps://$name:$subs" "$subs" --user alice@example.test:wrong; then fail "curl: wrong password accepted"; fi
grep -q '^< 535 5.7.8' "$work/curl-wrong" || fail "curl wrong password: $(grep -E '^[<*] ' "$work/curl-wrong" | tail -4)"
if curl_send curl-plain "curl plain" "smtp://$name:$sub" "$sub"; then fail "curl sent without TLS and without AUTH"; fi
grep -q '^< 530 5.7.0' "$work/curl-plain" || fail "curl without TLS: $(grep -E '^[<*] ' "$work/curl-plain" | tail -4)"
# OAuth: a JWT (RFC 7519) signed EdDSA by the issuer's key, for alice, valid 5 minutes.
jwt() {  # jwt EMAIL KEYFILE
    local header claims sig
    header=$(printf '{"alg":"EdDSA","kid":"test"}' | b64url)
    claims=$(printf '{"iss":"https://id.example.test","aud":"mail.example.test","email":"%s","exp":%d}' "$1" $(($(date +%s) + 300)) | b64url)
    printf '%s.%s' "$header" "$claims" >"$work/jwt.in"
    sig=$(openssl pkeyutl -sign -rawin -inkey "$2" -in "$work/jwt.in" | b64url)
    echo "$header.$claims.$sig"
}
token=$(jwt alice@example.test "$work/issuer.key")
# curl 7.88 picks OAUTHBEARER whenever the server offers it, whatever --login-options says
# (client behaviour, recorded here); XOAUTH2 is then driven from python's smtplib.
s="curl oauth OAUTHBEARER ($((++n)))"
curl_send curl-oauthbearer "$s" "smtps://$name:$subs" "$subs" --user alice@example.test --oauth2-bearer "$token" ||
    fail "curl OAUTHBEARER: $(grep -E '^[<*] ' "$work/curl-oauthbearer" | tail -6)"
grep -q "^> AUTH OAUTHBEARER" "$work/curl-oauthbearer" || fail "curl did not use OAUTHBEARER: $(grep '^> AUTH' "$work/curl-oauthbearer")"
check_arrived bob "$s" alice@example.test
(cd "$work" && TOKEN=$token PORT=$subs CERT=$cert python3 -c '
import base64, os, mail
s = mail.connect_smtps(int(os.environ["PORT"]))
ir = base64.b64encode(("user=alice@example.test\x01auth=Bearer " + os.environ["TOKEN"] + "\x01\x01").encode()).decode()
code, reply = s.docmd("AUTH", "XOAUTH2 " + ir)
assert code == 235, (code, reply)
s.quit()
') || fail "XOAUTH2 with a valid token refused"
openssl genpkey -algorithm ed25519 -out "$work/forger.key" 2>/dev/null
forged=$(jwt alice@example.test "$work/forger.key")
if curl_send curl-forged "curl forged" "smtps://$name:$subs" "$subs" --user alice@example.test \
    --oauth2-bearer "$forged" --login-options AUTH=OAUTHBEARER; then fail "curl: a forged token was accepted"; fi
grep -q '^< 535 5.7.8' "$work/curl-forged" || fail "forged token: $(grep -E '^[<*] ' "$work/curl-forged" | tail -4)"

# ---------------------------------------------------------------------------------------------
# 6. Autoconfig (Thunderbird) and Autodiscover (Outlook) on the http role.
base="http://127.0.0.1:$http"
for path in /.well-known/autoconfig/mail/config-v1.1.xml /mail/config-v1.1.xml; do
    out=$work/autoconfig.xml
    code=$(curl -sS -m 30 -o "$out" -w '%{http_code} %{content_type}' "$base$path?emailaddress=alice%40example.test") || fail "curl $path"
    case $code in 200\ *xml*) ;; *) fail "$path: $code: $(head -c 300 "$out")" ;; esac
    python3 - "$out" "$imaps" "$subs" "$sub" <<'PY' || fail "$path: $(cat "$out")"
import sys, xml.etree.ElementTree as ET
path, imaps, subs, sub = sys.argv[1], *sys.argv[2:]
root = ET.parse(path).getroot()
def check(cond, what):
    if not cond:
        print("autoconfig:", what); sys.exit(1)
check(root.tag == "clientConfig" and root.get("version") == "1.1", f"root {root.tag} {root.attrib}")
prov = root.find("emailProvider")
check(prov is not None and prov.get("id") == "example.test", "emailProvider@id")
check([d.text for d in prov.findall("domain")] == ["example.test"], "domain")
check((prov.findtext("displayName") or "").strip(), "displayName")
def server(el, kind):
    check(el.get("type") == kind, f"type {el.get('type')}")
    got = {k: (el.findtext(k) or "").strip() for k in ("hostname", "port", "socketType", "authentication", "username")}
    check(all(got.values()), f"{kind} server lacks an element: {got}")
    check(got["hostname"] == "mx.example.test", f"hostname {got['hostname']}")
    check(got["username"] in ("%EMAILADDRESS%", "alice@example.test"), f"username {got['username']}")
    check(got["authentication"].startswith("password-"), f"authentication {got['authentication']}")
    return got["port"], got["socketType"]
inc = [server(e, "imap") for e in prov.findall("incomingServer")]
out = [server(e, "smtp") for e in prov.findall("outgoingServer")]
# Only the roles that are enabled: imaps (no imap, no pop3), submissions and submission.
check(inc == [(imaps, "SSL")], f"incoming {inc}")
check(sorted(out) == sorted([(subs, "SSL"), (sub, "STARTTLS")]), f"outgoing {out}")
check(out[0] == (subs, "SSL"), f"implicit TLS is not preferred (RFC 8314): {out}")
PY
    code=$(curl -sS -m 30 -o "$work/unknown.out" -w '%{http_code}' "$base$path?emailaddress=carol%40unknown.test")
    [ "$code" = 404 ] || fail "$path for an unknown domain: $code: $(head -c 300 "$work/unknown.out")"
done
code=$(curl -sS -m 30 -o /dev/null -w '%{http_code}' "$base/no/such/path")
[ "$code" = 404 ] || fail "unknown path: $code"
autodiscover() {  # autodiscover ADDRESS OUT -> HTTP status
    cat >"$work/autodiscover-req.xml" <<XML
<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>$1</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
XML
    curl -sS -m 30 -o "$2" -w '%{http_code}' -X POST -H 'Content-Type: text/xml' --data-binary "@$work/autodiscover-req.xml" \
        "$base/autodiscover/autodiscover.xml"
}
code=$(autodiscover alice@example.test "$work/autodiscover.xml")
[ "$code" = 200 ] || fail "Autodiscover: $code: $(head -c 300 "$work/autodiscover.xml")"
python3 - "$work/autodiscover.xml" "$imaps" "$subs" <<'PY' || fail "Autodiscover: $(cat "$work/autodiscover.xml")"
import sys, xml.etree.ElementTree as ET
path, imaps, subs = sys.argv[1:]
A = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
R = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
root = ET.parse(path).getroot()
def check(cond, what):
    if not cond:
        print("autodiscover:", what); sys.exit(1)
check(root.tag == A + "Autodiscover", f"root {root.tag}")
acct = root.find(f"{R}Response/{R}Account")
check(acct is not None, "no Response/Account")
check(acct.findtext(R + "AccountType") == "email" and acct.findtext(R + "Action") == "settings", "AccountType/Action")
protos = {p.findtext(R + "Type"): p for p in acct.findall(R + "Protocol")}
check(set(protos) >= {"IMAP", "SMTP"}, f"Protocol types {list(protos)}")
for kind, port in (("IMAP", imaps), ("SMTP", subs)):
    p = protos[kind]
    got = {k: p.findtext(R + k) for k in ("Server", "Port", "LoginName", "SSL", "SPA", "AuthRequired")}
    check(got == {"Server": "mx.example.test", "Port": port, "LoginName": "alice@example.test", "SSL": "on",
                  "SPA": "off", "AuthRequired": "on"}, f"{kind}: {got}")
PY
code=$(autodiscover carol@unknown.test "$work/autodiscover-unknown.xml")
[ "$code" = 404 ] || fail "Autodiscover for an unknown domain: $code: $(head -c 300 "$work/autodiscover-unknown.xml")"

# Nothing unexpected went to the queue: only the one remote recipient.
rows=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$DB?mode=ro', uri=True).execute('select count(*) from queue_recipients').fetchone()[0])")
[ "$rows" = 1 ] || fail "queue recipients: $rows, want 1"
f store check >/dev/null || fail "store check"
echo "submission interop: swaks, msmtp, s-nail, smtplib, curl (with OAuth), autoconfig ok ($n messages)"
