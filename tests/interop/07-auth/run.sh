#!/usr/bin/env bash
# Email authentication interop: facteur's DKIM signatures checked by independent verifiers, and
# facteur's SPF/DKIM/DMARC/ARC checks fed by independent signers, every record served by a real
# DNS server on loopback (Debian's dnsmasq, a private instance on its own port: no upstream, no
# hosts file, every name it has no data for is NXDOMAIN; nothing leaves the machine).
#   1 signing    alice submits (AUTH PLAIN on loopback) a message made to exercise relaxed
#                canonicalization (folded Subject with runs of spaces, trailing blanks, empty
#                lines at the end, 8-bit text, a leading dot); facteur signs it with the keys
#                `facteur dkim generate` made (published in dnsmasq from its own zone lines;
#                `facteur dkim show` finds both) and its queue relays it to a sink (aiosmtpd,
#                the DATA bytes kept as received). The sink's copy ends with the submitted
#                message byte for byte, has 2 signatures (rsa-sha256, ed25519-sha256,
#                d=example.test, relaxed/relaxed, From twice in h=), and:
#                  dkimpy (dkim.DKIM.verify, DNS through dnspython to dnsmasq) passes both;
#                  OpenDKIM (the filter in test mode, `opendkim -t`, DNS through libunbound
#                  forwarding to dnsmasq) passes both: Debian's OpenDKIM 2.11 knows
#                  ed25519-sha256 (checked with `opendkim -V`);
#                  a copy with its body changed fails both signatures in both; so does a copy
#                  with a second From: field on top (From is over-signed).
#   2 verifying  messages signed by dkimpy (RSA relaxed/simple and Ed25519 relaxed/relaxed, keys
#                from its `dknewkey`) and by OpenDKIM (RSA from `opendkim-genkey`, Ed25519 from
#                openssl; the filter in test mode with a KeyTable/SigningTable, one run per
#                algorithm) go to facteur's MX with swaks from 127.0.0.1. Each signer first
#                verifies its own message. The delivered copies (`facteur mailbox export`) carry
#                one Authentication-Results from facteur, the first, with dkim=pass for each
#                signature (domain, selector), dmarc=pass and spf=fail for dkimpy.test (its SPF
#                record does not list 127.0.0.1: DMARC passes on DKIM alone, adkim=s), spf=pass
#                for opendkim.test. The dkimpy message with its body changed after signing is
#                refused with 550 5.7.26 (p=reject). dkimpy seals an ARC set (i=1, as a
#                forwarder would; dkimpy's arc_verify passes it): arc=pass; changed after
#                sealing: arc=fail.
#   3 policy     unsigned mail in the name of a p=reject domain from an address its SPF record
#                does not list: swaks sees 550 5.7.26 and nothing is delivered; p=quarantine:
#                250, in Junk (not INBOX) with dmarc=fail; Authentication-Results fields naming
#                facteur's host (as it is, in capitals, folded) are removed, other.test's is kept.
#   4 spf_fail   facteur restarted with `[auth] spf_fail = "reject"`: unsigned SPF-failing mail
#                is refused with 550 5.7.23; a dkimpy message (SPF fail, DKIM-aligned DMARC
#                pass) is still delivered.
#   5 edge cases where facteur must agree with the independent implementations or the RFCs;
#                each miss is printed as a DISAGREEMENT at once, all are listed at the end and
#                the test fails then (after every other check has passed):
#                  a body ending in blank-only lines (" ", "\t"), relaxed body canonicalization
#                  (RFC 6376 §3.4.4: the blanks go, then the empty lines at the end): facteur's
#                  signatures of it must pass in dkimpy and OpenDKIM, and dkimpy's signature of
#                  it (dkimpy.test: SPF fail, p=reject) must pass in facteur;
#                  rsa-sha256 under a key record that says h=sha1 must not count (RFC 6376
#                  §3.6.1, §6.1.2; OpenDKIM: fail "signature-key hash mismatch");
#                  rsa-sha1 must not count (RFC 8301 §3.1; dkimpy and OpenDKIM still pass it);
#                  and, as a note only, what facteur makes of l= (RFC 6376 §8.2).
# iprev: facteur's resolver (hickory) answers PTR questions in 127.in-addr.arpa itself
# ("localhost", RFC 6761/6303) without asking the configured server, so loopback clients get
# iprev=pass (localhost) whatever dnsmasq holds; the test checks that result only.
# dkimpy, dnspython and the sink run under Debian's python (/usr/bin/python3), which sees the
# Debian modules; lib.sh's helpers use whatever python3 comes first in PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FACTEUR_BIN:-$root/target/debug/facteur}
. "$root/tests/interop/lib.sh"

apt_need swaks swaks || exit 77
apt_need openssl openssl || exit 77
apt_need dnsmasq dnsmasq-base || exit 77
apt_need opendkim opendkim || exit 77
apt_need opendkim-genkey opendkim-tools || exit 77
# Debian's OpenDKIM (2.11) signs and verifies ed25519-sha256 (RFC 8463); an older one would not.
odk_version=$(opendkim -V 2>&1 || true)
case $odk_version in
    *ed25519-sha256*) ;;
    *) echo "FAIL: this OpenDKIM does not know ed25519-sha256: $odk_version"; exit 1 ;;
esac
py=/usr/bin/python3
# dkimpy needs PyNaCl for Ed25519 and authres for ARC; dnspython is its DNS, aiosmtpd the sink.
debian_modules() { [ -x "$py" ] && "$py" -c 'import dkim, nacl, authres, dns.resolver, aiosmtpd' 2>/dev/null; }
debian_modules || apt_need /nonexistent python3-dkim python3-nacl python3-authres python3-dnspython python3-aiosmtpd || exit 77
debian_modules || { echo "dkimpy, PyNaCl, authres, dnspython or aiosmtpd cannot be imported by $py"; exit 77; }
command -v dknewkey >/dev/null || { echo "dknewkey (python3-dkim) is missing"; exit 77; }

work=$(new_workdir)
pid= dns_pid= sink_pid=
cleanup() {
    for p in $pid $dns_pid $sink_pid; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "work directory kept: $work" || rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- DNS queries (dnsmasq)"; grep -E 'query|config|reply' "$work/dns.log" 2>/dev/null | tail -20 || true
    echo "--- sink log"; tail -10 "$work/sink.log" 2>/dev/null || true
    echo "--- facteur log"; tail -30 "$work/facteur.log" 2>/dev/null || true
    exit 1
}
step() { echo "-- $*"; }

dns=$(free_port); mx=$(free_port); sub=$(free_port); sink=$(free_port)
export DNS_PORT=$dns
mkdir -p "$work/keys" "$work/sink" "$work/msg"

# ---------------------------------------------------------------------------------------------
# Python helpers (Debian's python), in $work/auth.py:
#   sink DIR PORT              an SMTP server on 127.0.0.1:PORT saving each message as DIR/N.eml,
#                              the DATA bytes exactly as received
#   sign-dkimpy IN OUT KEYDIR  IN signed by dkimpy for dkimpy.test (py-rsa relaxed/simple,
#                              py-ed relaxed/relaxed), into OUT
#   sign-one IN OUT KEY SEL ALG CANON [1]  IN signed by dkimpy for dkimpy.test with the one
#                              private key KEY, selector SEL, algorithm ALG, canonicalization
#                              CANON ("relaxed/relaxed"), with l= when 1
#   seal-arc IN OUT KEYDIR     IN passed on by list.test: its Authentication-Results, then an
#                              ARC set sealed by dkimpy (checked with dkimpy's arc_verify)
#   tamper IN OUT body|from    IN with a word of its body changed, or a From: field added on top
#   dkimpy MSG                 dkimpy's verdict on each DKIM-Signature of MSG, written as an
#                              Authentication-Results value ("dkimpy; dkim=pass header.a=..")
#   opendkim MSG CONF          OpenDKIM's Authentication-Results value for MSG (`opendkim -t`)
#   facteur MSG                the Authentication-Results value facteur (mx.example.test) put
#                              on MSG, checking it is the only one with that name and the first
#   expect RESULTS WANT...     each WANT ("dkim=pass header.d=x header.s=y", "dkim!=pass") must
#                              hold in the Authentication-Results value RESULTS; with dkim WANTs
#                              of the "=" form, there must be as many dkim results as WANTs
cat >"$work/auth.py" <<'PY'
import os, re, subprocess, sys, time

def resolver():
    import dns.resolver
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = int(os.environ["DNS_PORT"])
    r.lifetime = 5
    return r

def dnsfunc(name, timeout=5):
    """dkimpy's DNS hook: the TXT record of NAME from the loopback server, strings joined."""
    import dns.resolver
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b"".join(answer[0].strings)

def read(path):
    return open(path, "rb").read()

def header_fields(msg):
    """(name, raw value with its folding) for each field of the header section."""
    head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0].decode("utf-8", "replace")
    fields = []
    for line in re.split(r"\r?\n", head):
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1] += "\n" + line
        elif ":" in line:
            name, value = line.split(":", 1)
            fields.append([name, value])
    return fields

def parse(value):
    """An Authentication-Results value -> (authserv-id, [(method, result, {property: value})])."""
    v = re.sub(r"\r?\n[ \t]*", " ", value)
    while re.search(r"\([^()]*\)", v):
        v = re.sub(r"\([^()]*\)", " ", v)
    parts = [p.strip() for p in v.split(";")]
    authserv = parts[0].split()[0] if parts[0].split() else ""
    results = []
    for p in parts[1:]:
        tokens = re.findall(r'[^\s=]+=(?:"[^"]*"|\S*)|\S+', p)
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props = {}
        for t in tokens[1:]:
            k, _, val = t.partition("=")
            props[k.lower()] = val.strip('"')
        results.append((method.lower(), result.lower(), props))
    return authserv, results

def sink(folder, port):
    from aiosmtpd.controller import Controller
    class Save:
        n = 0
        async def handle_DATA(self, server, session, envelope):
            Save.n += 1
            path = os.path.join(folder, f"{Save.n}.eml")
            with open(path + ".tmp", "wb") as f:
                f.write(envelope.original_content)
            os.rename(path + ".tmp", path)
            print(f"saved {path}: from {envelope.mail_from} to {envelope.rcpt_tos}, {len(envelope.original_content)} bytes", flush=True)
            return "250 2.0.0 Ok: saved"
    c = Controller(Save(), hostname="127.0.0.1", port=int(port), server_hostname="sink.test")
    c.start()
    print(f"sink listening on 127.0.0.1:{port}", flush=True)
    while True:
        time.sleep(3600)

def sign_dkimpy(src, dst, keydir):
    import dkim
    msg = read(src)
    rsa = read(os.path.join(keydir, "py-rsa.key"))
    ed = read(os.path.join(keydir, "py-ed.key"))
    sig_rsa = dkim.sign(msg, b"py-rsa", b"dkimpy.test", rsa, canonicalize=(b"relaxed", b"simple"),
                        signature_algorithm=b"rsa-sha256")
    sig_ed = dkim.sign(msg, b"py-ed", b"dkimpy.test", ed, canonicalize=(b"relaxed", b"relaxed"),
                       signature_algorithm=b"ed25519-sha256")
    if not sig_rsa.startswith(b"DKIM-Signature:") or not sig_ed.startswith(b"DKIM-Signature:"):
        raise SystemExit(f"dkimpy did not sign: {sig_rsa!r} {sig_ed!r}")
    open(dst, "wb").write(sig_ed + sig_rsa + msg)

def sign_one(src, dst, keyfile, selector, algorithm, canon, length="0"):
    """SRC signed by dkimpy for dkimpy.test with one key, into DST."""
    import dkim
    msg = read(src)
    header, body = canon.encode().split(b"/")
    sig = dkim.sign(msg, selector.encode(), b"dkimpy.test", read(keyfile),
                    canonicalize=(header, body), signature_algorithm=algorithm.encode(), length=length == "1")
    if not sig.startswith(b"DKIM-Signature:"):
        raise SystemExit(f"dkimpy did not sign: {sig!r}")
    open(dst, "wb").write(sig + msg)

def seal_arc(src, dst, keydir):
    """SRC as a forwarder (list.test) passes it on: its Authentication-Results, then an ARC set
    (i=1) sealed by dkimpy with dkimpy.test's py-rsa key; checked with dkimpy's arc_verify."""
    import dkim
    msg = b"Authentication-Results: list.test; spf=pass smtp.mailfrom=someone@elsewhere.test; dkim=none\r\n" + read(src)
    key = read(os.path.join(keydir, "py-rsa.key"))
    arc = dkim.arc_sign(msg, b"py-rsa", b"dkimpy.test", key, b"list.test")
    if len(arc) != 3:
        raise SystemExit(f"dkimpy made no ARC set: {arc!r}")
    sealed = b"".join(arc) + msg
    cv, _, why = dkim.arc_verify(sealed, dnsfunc=dnsfunc)
    if cv != b"pass":
        raise SystemExit(f"dkimpy's arc_verify of its own seal: {cv!r} {why}")
    open(dst, "wb").write(sealed)

def tamper(src, dst, how):
    msg = read(src)
    head, sep, body = msg.partition(b"\r\n\r\n")
    if how == "body":
        changed = body.replace(b"facteur", b"Mallory", 1).replace(b"Sent to", b"Sent by", 1)
        assert changed != body, "nothing to change in the body"
        msg = head + sep + changed
    elif how == "from":
        msg = b"From: Mallory <mallory@example.test>\r\n" + msg
    open(dst, "wb").write(msg)

def dkimpy_results(path):
    import dkim
    from dkim.util import parse_tag_value
    msg = read(path)
    sigs = [v for n, v in header_fields(msg) if n.strip().lower() == "dkim-signature"]
    out = ["dkimpy"]
    for i, raw in enumerate(sigs):
        tags = parse_tag_value(raw.replace("\n", "").encode())
        d = dkim.DKIM(msg)
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
            why = ""
        except Exception as e:  # a malformed signature or key: dkimpy raises
            detail = re.sub(r"\s+", " ", f"{type(e).__name__}: {e}").replace("(", "[").replace(")", "]")
            ok, why = False, f" ({detail})"
        result = "pass" if ok else "fail"
        out.append(f"dkim={result}{why} header.a={tags[b'a'].decode()} header.d={tags[b'd'].decode()} header.s={tags[b's'].decode()}")
    print(";\n\t".join(out))

def opendkim_results(path, conf):
    p = subprocess.run(["opendkim", "-x", conf, "-vv", "-t", path], capture_output=True, text=True, timeout=60)
    m = re.search(r"hname='Authentication-Results' hvalue='(.*?)'$", p.stdout, re.S | re.M)
    if not m:
        raise SystemExit(f"OpenDKIM wrote no Authentication-Results (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    print(m.group(1))

def facteur_results(path):
    fields = header_fields(read(path))
    ours = [(i, v) for i, (n, v) in enumerate(fields)
            if n.strip().lower() == "authentication-results" and parse(v)[0].lower() == "mx.example.test"]
    if len(ours) != 1:
        raise SystemExit(f"{len(ours)} Authentication-Results fields from mx.example.test in {path}")
    first = [i for i, (n, _) in enumerate(fields) if n.strip().lower() == "authentication-results"][0]
    if ours[0][0] != first:
        raise SystemExit(f"facteur's Authentication-Results is not the first one in {path}")
    print(ours[0][1].strip())

def expect(path, wants):
    value = open(path).read()
    _, results = parse(value)
    problems = []
    dkim_wants = 0
    for want in wants:
        head, *props = want.split()
        method, result = re.split(r"!?=", head, maxsplit=1)
        if "!=" in head:  # no result METHOD=RESULT at all
            bad = [r for r in results if r[0] == method and r[1] == result]
            if bad:
                problems.append(f"unexpected {method}={result}: {bad}")
            continue
        wanted = dict(p.split("=", 1) for p in props)
        if method == "dkim":
            dkim_wants += 1
        if not any(m == method and res == result and all(got.get(k, "").lower() == v.lower() for k, v in wanted.items())
                   for m, res, got in results):
            problems.append(f"no {want}")
    if dkim_wants:
        got = [r for r in results if r[0] == "dkim"]
        if len(got) != dkim_wants:
            problems.append(f"{len(got)} dkim results, want {dkim_wants}")
    if problems:
        print("; ".join(problems))
        print("in: " + value)
        sys.exit(1)

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sink":
        sink(sys.argv[2], sys.argv[3])
    elif cmd == "sign-dkimpy":
        sign_dkimpy(*sys.argv[2:5])
    elif cmd == "sign-one":
        sign_one(*sys.argv[2:])
    elif cmd == "seal-arc":
        seal_arc(*sys.argv[2:5])
    elif cmd == "tamper":
        tamper(*sys.argv[2:5])
    elif cmd == "dkimpy":
        dkimpy_results(sys.argv[2])
    elif cmd == "opendkim":
        opendkim_results(sys.argv[2], sys.argv[3])
    elif cmd == "facteur":
        facteur_results(sys.argv[2])
    elif cmd == "expect":
        expect(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(f"unknown command {cmd}")
PY
aux() { "$py" "$work/auth.py" "$@"; }
# results VERIFIER MSG OUT: the verifier's Authentication-Results value for MSG, into OUT.
results() {
    case $1 in
        dkimpy) aux dkimpy "$2" ;;
        opendkim) aux opendkim "$2" "$work/opendkim-verify.conf" ;;
        facteur) aux facteur "$2" ;;
    esac >"$3" 2>&1 || fail "$1 on $2: $(cat "$3")"
}
# check_results WHAT RESULTS WANT...: auth.py expect, with WHAT in the failure message.
check_results() {
    local what=$1 file=$2
    shift 2
    aux expect "$file" "$@" >"$file.why" 2>&1 || fail "$what: $(cat "$file.why")"
}

# ---------------------------------------------------------------------------------------------
# Keys. facteur's for example.test (before the server starts: it signs with them at once),
# dkimpy's (dknewkey) and OpenDKIM's (opendkim-genkey; Ed25519 from openssl, which
# opendkim-genkey does not make) for the domains that sign mail sent to facteur's MX.
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
transports = { "sink.test" = "127.0.0.1:$sink" }
[auth]
enabled = true
spf_fail = "tag"
CONF
f() { "$bin" --config "$work/facteur.toml" "$@"; }
f domain add example.test >/dev/null 2>"$work/cli.log" || fail "domain add: $(cat "$work/cli.log")"
pass='alice pass'
for u in alice bob; do printf '%s\n' "$pass" | f account add "$u@example.test" --password-stdin >/dev/null; done
step "facteur dkim generate example.test"
f dkim generate example.test >"$work/generated.txt" || fail "dkim generate: $(cat "$work/generated.txt")"
# Zone lines: `NAME. 3600 IN TXT ( "v=DKIM1; k=rsa; " "p=..." )` -> dnsmasq's
# txt-record=NAME,"piece","piece" (each piece one character-string, as the zone line has them).
grep '._domainkey.example.test. .* IN TXT ' "$work/generated.txt" >"$work/zone-lines" || fail "no zone lines: $(cat "$work/generated.txt")"
[ "$(wc -l <"$work/zone-lines")" = 2 ] || fail "want 2 zone lines: $(cat "$work/zone-lines")"
rsa_sel=$(sed -n 's/^\(rsa-[0-9a-z]*\)\._domainkey.*/\1/p' "$work/zone-lines")
ed_sel=$(sed -n 's/^\(ed-[0-9a-z]*\)\._domainkey.*/\1/p' "$work/zone-lines")
[ -n "$rsa_sel" ] && [ -n "$ed_sel" ] || fail "selectors not found: $(cat "$work/zone-lines")"
: >"$work/dnsmasq.conf"
while read -r name _; do
    pieces=$(grep "^$name " "$work/zone-lines" | grep -o '"[^"]*"' | paste -sd, -)
    echo "txt-record=${name%.},$pieces" >>"$work/dnsmasq.conf"
done <"$work/zone-lines"

step "dknewkey (dkimpy), opendkim-genkey, openssl: keys of dkimpy.test and opendkim.test"
(cd "$work/keys" && dknewkey py-rsa && dknewkey --ktype ed25519 py-ed) >"$work/dknewkey.out" 2>&1 || fail "dknewkey: $(cat "$work/dknewkey.out")"
opendkim-genkey -D "$work/keys" -d opendkim.test -s odk-rsa -b 2048 || fail "opendkim-genkey"
openssl genpkey -algorithm ed25519 -out "$work/keys/odk-ed.pem" 2>/dev/null || fail "openssl genpkey ed25519"
odk_ed_pub=$(openssl pkey -in "$work/keys/odk-ed.pem" -pubout -outform DER | tail -c 32 | base64)
# opendkim-genkey's own zone text, its quoted pieces.
odk_rsa_txt=$(grep -o '"[^"]*"' "$work/keys/odk-rsa.txt" | paste -sd, -)

# ---------------------------------------------------------------------------------------------
# DNS: dnsmasq on 127.0.0.1:$dns, answering only from this file (local=/#/: every other name is
# NXDOMAIN, no upstream), logging each query.
cat >>"$work/dnsmasq.conf" <<CONF
txt-record=example.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=_dmarc.example.test,"v=DMARC1; p=reject"
txt-record=py-rsa._domainkey.dkimpy.test,"$(cat "$work/keys/py-rsa.dns")"
txt-record=py-ed._domainkey.dkimpy.test,"$(cat "$work/keys/py-ed.dns")"
txt-record=dkimpy.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=_dmarc.dkimpy.test,"v=DMARC1; p=reject; adkim=s"
txt-record=py-noh._domainkey.dkimpy.test,"v=DKIM1; k=rsa; p=$(sed 's/.*p=//' "$work/keys/py-rsa.dns")"
txt-record=py-hsha1._domainkey.dkimpy.test,"v=DKIM1; k=rsa; h=sha1; p=$(sed 's/.*p=//' "$work/keys/py-rsa.dns")"
txt-record=odk-rsa._domainkey.opendkim.test,$odk_rsa_txt
txt-record=odk-ed._domainkey.opendkim.test,"v=DKIM1; k=ed25519; p=$odk_ed_pub"
txt-record=opendkim.test,"v=spf1 ip4:127.0.0.1 -all"
txt-record=_dmarc.opendkim.test,"v=DMARC1; p=reject"
txt-record=forged.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=_dmarc.forged.test,"v=DMARC1; p=reject"
txt-record=quar.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=_dmarc.quar.test,"v=DMARC1; p=quarantine"
txt-record=spf.test,"v=spf1 ip4:192.0.2.1 -all"
local=/#/
CONF
step "dnsmasq on 127.0.0.1:$dns"
dnsmasq --no-daemon --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --port="$dns" \
    --conf-file="$work/dnsmasq.conf" --pid-file= --user=nobody --log-queries --log-facility="$work/dns.log" \
    >"$work/dnsmasq.out" 2>&1 &
dns_pid=$!
dns_ready() {
    "$py" -c '
import sys; sys.path.insert(0, sys.argv[1]); import auth
print(auth.dnsfunc("_dmarc.forged.test").decode())' "$work" 2>/dev/null
}
for _ in $(seq 100); do [ "$(dns_ready)" = "v=DMARC1; p=reject" ] && break; sleep 0.1; done
[ "$(dns_ready)" = "v=DMARC1; p=reject" ] || fail "dnsmasq does not answer: $(cat "$work/dnsmasq.out")"
# OpenDKIM resolves through libunbound: forwarded to dnsmasq only. Unbound refuses to query
# 127.0.0.1 and answers NXDOMAIN for .test (RFC 6761) unless told otherwise.
cat >"$work/unbound.conf" <<CONF
server:
	do-not-query-localhost: no
	do-ip6: no
	local-zone: "test." nodefault
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@$dns
CONF
cat >"$work/opendkim-verify.conf" <<CONF
Mode v
Syslog no
AuthservID opendkim.test
ResolverConfiguration $work/unbound.conf
CONF

# facteur's own check of what DNS publishes for its keys.
f dkim show example.test >"$work/dkim-show.txt" 2>&1 || fail "dkim show (exit $?): $(cat "$work/dkim-show.txt")"
[ "$(grep -c 'DNS: published' "$work/dkim-show.txt")" = 2 ] || fail "dkim show: $(cat "$work/dkim-show.txt")"

# ---------------------------------------------------------------------------------------------
step "sink on 127.0.0.1:$sink, facteur (MX 127.0.0.1:$mx, submission 127.0.0.1:$sub)"
"$py" "$work/auth.py" sink "$work/sink" "$sink" >"$work/sink.log" 2>&1 &
sink_pid=$!
wait_port "$sink" || fail "the sink did not listen"
start_facteur() {
    "$bin" --config "$work/facteur.toml" serve 2>>"$work/facteur.log" &
    pid=$!
    wait_port "$mx" || fail "facteur did not start (MX)"
    wait_port "$sub" || fail "facteur did not start (submission)"
}
stop_facteur() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
start_facteur

# ---------------------------------------------------------------------------------------------
# 1. facteur signs, dkimpy and OpenDKIM verify.
step "1. alice submits; facteur signs and relays to the sink"
printf '%s\r\n' \
    "From: Alice <alice@example.test>" \
    "To: Someone <someone@sink.test>" \
    "Subject:  DKIM   interop" \
    "	 (folded,   with  runs of spaces)  " \
    "Date: Mon, 23 Nov 2026 10:00:00 +0000" \
    "Message-ID: <auth-signed@example.test>" \
    "MIME-Version: 1.0" \
    "Content-Type: text/plain; charset=utf-8" \
    "Content-Transfer-Encoding: 8bit" \
    "" \
    "Grüße von facteur.   " \
    "a tab at the end	" \
    ".leading dot" \
    "  inner   spaces  " \
    "" \
    "" >"$work/msg/signed.eml"
"$py" - "$sub" "$pass" "$work/msg/signed.eml" <<'PY' >"$work/submit.out" 2>&1 || fail "submission: $(cat "$work/submit.out")"
import smtplib, sys
port, password, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("client.example.test")
s.login("alice@example.test", password)
s.mail("alice@example.test", ["BODY=8BITMIME"])
code, reply = s.rcpt("someone@sink.test")
assert code == 250, (code, reply)
code, reply = s.data(open(path, "rb").read())
assert code == 250, (code, reply)
s.quit()
print(reply.decode())
PY
for _ in $(seq 300); do [ -e "$work/sink/1.eml" ] && break; sleep 0.1; done
got=$work/sink/1.eml
[ -e "$got" ] || fail "the sink got nothing in 30 s: $(f queue list 2>&1 | tail -5)"
[ "$(grep -c '^DKIM-Signature:' "$got")" = 2 ] || fail "want 2 DKIM-Signature fields at the sink: $(head -c 2000 "$got")"
"$py" - "$work" "$got" "$rsa_sel" "$ed_sel" <<'PY' >"$work/sigs.out" 2>&1 || fail "facteur's signatures: $(cat "$work/sigs.out")"
import sys
sys.path.insert(0, sys.argv[1])
from auth import header_fields, read
from dkim.util import parse_tag_value
msg, rsa_sel, ed_sel = read(sys.argv[2]), sys.argv[3], sys.argv[4]
sigs = [parse_tag_value(v.replace("\n", "").encode()) for n, v in header_fields(msg) if n.lower() == "dkim-signature"]
got = sorted((t[b"a"].decode(), t[b"s"].decode()) for t in sigs)
assert got == sorted([("rsa-sha256", rsa_sel), ("ed25519-sha256", ed_sel)]), got
for t in sigs:
    assert t[b"d"] == b"example.test", t
    assert t[b"c"] == b"relaxed/relaxed", t
    h = [x.strip().lower() for x in t[b"h"].decode().replace(" ", "").split(":")]
    assert h.count("from") == 2, f"From not over-signed: h={h}"
    for name in ("subject", "date", "to", "message-id", "content-type"):
        assert name in h, f"{name} not signed: h={h}"
print("ok")
PY
# The sink holds what facteur sent: the submitted message under facteur's own fields.
"$py" - "$got" "$work/msg/signed.eml" <<'PY' || fail "the sink's copy does not end with the submitted message"
import sys
got, sent = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
assert got.endswith(sent), (got[-300:], sent[-300:])
PY

step "1. dkimpy verifies facteur's signatures"
results dkimpy "$got" "$work/r1-dkimpy"
cat "$work/r1-dkimpy"
check_results "dkimpy on facteur's message" "$work/r1-dkimpy" \
    "dkim=pass header.a=rsa-sha256 header.d=example.test header.s=$rsa_sel" \
    "dkim=pass header.a=ed25519-sha256 header.d=example.test header.s=$ed_sel"
step "1. OpenDKIM verifies facteur's signatures"
results opendkim "$got" "$work/r1-opendkim"
cat "$work/r1-opendkim"
check_results "OpenDKIM on facteur's message" "$work/r1-opendkim" \
    "dkim=pass header.a=rsa-sha256 header.d=example.test header.s=$rsa_sel" \
    "dkim=pass header.a=ed25519-sha256 header.d=example.test header.s=$ed_sel"
step "1. tampered copies fail in both"
aux tamper "$got" "$work/msg/tampered-body.eml" body || fail "tamper"
aux tamper "$got" "$work/msg/tampered-from.eml" from || fail "tamper"
for v in dkimpy opendkim; do
    results "$v" "$work/msg/tampered-body.eml" "$work/r1-$v-body"
    cat "$work/r1-$v-body"
    check_results "$v on facteur's message, body changed" "$work/r1-$v-body" \
        "dkim=fail header.a=rsa-sha256 header.d=example.test header.s=$rsa_sel" \
        "dkim=fail header.a=ed25519-sha256 header.d=example.test header.s=$ed_sel"
    results "$v" "$work/msg/tampered-from.eml" "$work/r1-$v-from"
    cat "$work/r1-$v-from"
    check_results "$v on facteur's message, From: added" "$work/r1-$v-from" \
        "dkim=fail header.a=rsa-sha256 header.d=example.test header.s=$rsa_sel" \
        "dkim=fail header.a=ed25519-sha256 header.d=example.test header.s=$ed_sel"
done

# ---------------------------------------------------------------------------------------------
# 2. dkimpy and OpenDKIM sign, facteur verifies.
# mx_send NAME FILE FROM: swaks to bob@example.test on the MX from 127.0.0.1; its log in
# $work/NAME.
mx_send() {
    swaks --server "127.0.0.1:$mx" --local-interface 127.0.0.1 --ehlo client.example.test \
        --from "$3" --to bob@example.test \
        --data "@$2" --timeout 30 >"$work/$1" 2>&1
}
replies() { grep -E '^<[~-]?\*? +[0-9]{3}[ -]|^\*\*\*' "$work/$1" | tail -6; }
accepted() {  # accepted NAME FILE FROM
    mx_send "$@" || fail "swaks $1: exit $?: $(replies "$1")"
    grep -q '^<-  250 2.0.0' "$work/$1" || fail "swaks $1: no 250 after DATA: $(replies "$1")"
}
refused() {  # refused NAME FILE FROM REPLY
    if mx_send "$1" "$2" "$3"; then fail "swaks $1: accepted, want $4: $(replies "$1")"; fi
    grep -qE "^<\*\* +$4" "$work/$1" || fail "swaks $1: want $4: $(replies "$1")"
}
# delivered MAILBOX SUBJECT OUT: the one message with this Subject in bob's MAILBOX, into OUT.
delivered() {
    rm -rf "$work/export"
    f mailbox export bob@example.test "$1" --out "$work/export" >/dev/null 2>&1 || { echo "no mailbox $1"; return 1; }
    local found
    found=$(grep -l -x -F -e "Subject: $2" -e "Subject: $2"$'\r' "$work/export/"*.eml 2>/dev/null || true)
    [ "$(printf '%s' "$found" | grep -c .)" = 1 ] || { echo "$(printf '%s' "$found" | grep -c .) messages '$2' in $1"; return 1; }
    cp "$found" "$3"
}
absent() {  # absent MAILBOX SUBJECT: no message with this Subject in bob's MAILBOX
    rm -rf "$work/export"
    f mailbox export bob@example.test "$1" --out "$work/export" >/dev/null 2>&1 || return 0
    ! grep -q -x -F -e "Subject: $2" -e "Subject: $2"$'\r' "$work/export/"*.eml 2>/dev/null
}
message() {  # message FROM SUBJECT OUT: a plain message to bob
    printf '%s\r\n' "From: $1" "To: Bob <bob@example.test>" "Subject: $2" \
        "Date: Mon, 23 Nov 2026 11:00:00 +0000" "Message-ID: <$(echo "$2" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' -)@interop.test>" \
        "MIME-Version: 1.0" "Content-Type: text/plain; charset=us-ascii" "" \
        "Sent to facteur's MX," "signed (or not) by someone else.   " "" >"$3"
}

step "2. dkimpy signs (py-rsa relaxed/simple, py-ed relaxed/relaxed) for dkimpy.test; to facteur's MX"
message "News <news@dkimpy.test>" "signed by dkimpy" "$work/msg/dkimpy.raw"
aux sign-dkimpy "$work/msg/dkimpy.raw" "$work/msg/dkimpy.eml" "$work/keys" || fail "dkimpy could not sign"
# dkimpy checks its own signatures first (the records in DNS are the right ones).
results dkimpy "$work/msg/dkimpy.eml" "$work/r2-dkimpy-self"
check_results "dkimpy on its own message" "$work/r2-dkimpy-self" \
    "dkim=pass header.a=rsa-sha256 header.s=py-rsa" "dkim=pass header.a=ed25519-sha256 header.s=py-ed"
accepted dkimpy-mx "$work/msg/dkimpy.eml" news@dkimpy.test
delivered INBOX "signed by dkimpy" "$work/msg/dkimpy.got" || fail "dkimpy's message: $(delivered INBOX "signed by dkimpy" /dev/null)"
results facteur "$work/msg/dkimpy.got" "$work/r2-dkimpy"
cat "$work/r2-dkimpy"
check_results "facteur on dkimpy's message" "$work/r2-dkimpy" \
    "dkim=pass header.d=dkimpy.test header.s=py-rsa" "dkim=pass header.d=dkimpy.test header.s=py-ed" \
    "spf=fail" "dmarc=pass header.from=dkimpy.test" "iprev=pass" "arc=none"

step "2. OpenDKIM signs (odk-rsa and odk-ed, the filter in test mode) for opendkim.test; to facteur's MX"
message "Alerts <alerts@opendkim.test>" "signed by OpenDKIM" "$work/msg/opendkim.raw"
# opendkim -t prints the signature it would add; one run per algorithm (one KeyTable each).
: >"$work/msg/opendkim.sigs"
for k in odk-rsa:rsa-sha256:odk-rsa.private odk-ed:ed25519-sha256:odk-ed.pem; do
    IFS=: read -r sel alg file <<<"$k"
    printf '%s._domainkey.opendkim.test opendkim.test:%s:%s\n' "$sel" "$sel" "$work/keys/$file" >"$work/keys/$sel.keytable"
    printf '*@opendkim.test %s._domainkey.opendkim.test\n' "$sel" >"$work/keys/$sel.signingtable"
    # RequireSafeKeys: the keys are under /tmp, world-writable, which OpenDKIM calls unsafe.
    cat >"$work/keys/$sel.conf" <<CONF
Mode s
Syslog no
KeyTable file:$work/keys/$sel.keytable
SigningTable refile:$work/keys/$sel.signingtable
SignatureAlgorithm $alg
Canonicalization relaxed/relaxed
RequireSafeKeys no
CONF
    opendkim -x "$work/keys/$sel.conf" -t "$work/msg/opendkim.raw" >"$work/opendkim-sign-$sel.out" 2>&1 ||
        fail "OpenDKIM could not sign with $sel: $(cat "$work/opendkim-sign-$sel.out")"
    sed -n '/^DKIM-Signature:/,$p' "$work/opendkim-sign-$sel.out" | grep -v '^opendkim:' >>"$work/msg/opendkim.sigs"
    [[ $(tr '\n' ' ' <"$work/msg/opendkim.sigs") == *"a=$alg; "*"s=$sel;"* ]] || fail "no $alg signature from OpenDKIM: $(cat "$work/opendkim-sign-$sel.out")"
done
# Its folded lines end in CRLF but the last: CRLF everywhere.
sed 's/\r*$/\r/' "$work/msg/opendkim.sigs" | cat - "$work/msg/opendkim.raw" >"$work/msg/opendkim.eml"
results opendkim "$work/msg/opendkim.eml" "$work/r2-opendkim-self"
check_results "OpenDKIM on its own message" "$work/r2-opendkim-self" \
    "dkim=pass header.a=rsa-sha256 header.s=odk-rsa" "dkim=pass header.a=ed25519-sha256 header.s=odk-ed"
accepted opendkim-mx "$work/msg/opendkim.eml" alerts@opendkim.test
delivered INBOX "signed by OpenDKIM" "$work/msg/opendkim.got" || fail "OpenDKIM's message: $(delivered INBOX "signed by OpenDKIM" /dev/null)"
results facteur "$work/msg/opendkim.got" "$work/r2-opendkim"
cat "$work/r2-opendkim"
check_results "facteur on OpenDKIM's message" "$work/r2-opendkim" \
    "dkim=pass header.d=opendkim.test header.s=odk-rsa" "dkim=pass header.d=opendkim.test header.s=odk-ed" \
    "spf=pass" "dmarc=pass header.from=opendkim.test" "iprev=pass"

step "2. dkimpy's message with its body changed: DMARC fails, p=reject"
aux tamper "$work/msg/dkimpy.eml" "$work/msg/dkimpy-tampered.eml" body || fail "tamper"
cmp -s "$work/msg/dkimpy.eml" "$work/msg/dkimpy-tampered.eml" && fail "the tampered copy is the same"
refused dkimpy-tampered "$work/msg/dkimpy-tampered.eml" news@dkimpy.test '550 5.7.26'

step "2. dkimpy seals an ARC set (i=1) as list.test would, forwarding; facteur: arc=pass"
message "Someone <someone@elsewhere.test>" "sealed by dkimpy" "$work/msg/arc.raw"
aux seal-arc "$work/msg/arc.raw" "$work/msg/arc.eml" "$work/keys" >"$work/arc.out" 2>&1 || fail "dkimpy ARC: $(cat "$work/arc.out")"
accepted arc "$work/msg/arc.eml" someone@elsewhere.test
delivered INBOX "sealed by dkimpy" "$work/msg/arc.got" || fail "the ARC-sealed message: $(delivered INBOX "sealed by dkimpy" /dev/null)"
results facteur "$work/msg/arc.got" "$work/r2-arc"
cat "$work/r2-arc"
check_results "facteur on dkimpy's ARC set" "$work/r2-arc" "arc=pass" "dkim=none" "dmarc=none"
step "2. the ARC-sealed message with its body changed after sealing: arc=fail"
message "Someone <someone@elsewhere.test>" "sealed by dkimpy, changed" "$work/msg/arc2.raw"
aux seal-arc "$work/msg/arc2.raw" "$work/msg/arc2.sealed" "$work/keys" >"$work/arc.out" 2>&1 || fail "dkimpy ARC: $(cat "$work/arc.out")"
aux tamper "$work/msg/arc2.sealed" "$work/msg/arc2.eml" body || fail "tamper"
accepted arc-changed "$work/msg/arc2.eml" someone@elsewhere.test
delivered INBOX "sealed by dkimpy, changed" "$work/msg/arc2.got" || fail "the changed ARC-sealed message: $(delivered INBOX "sealed by dkimpy, changed" /dev/null)"
results facteur "$work/msg/arc2.got" "$work/r2-arc-changed"
cat "$work/r2-arc-changed"
check_results "facteur on dkimpy's ARC set, body changed" "$work/r2-arc-changed" "arc=fail"

# ---------------------------------------------------------------------------------------------
# 3. Policy.
step "3. forged, unsigned, p=reject: 550 5.7.26"
message "CEO <ceo@forged.test>" "forged reject" "$work/msg/forged.eml"
refused forged "$work/msg/forged.eml" ceo@forged.test '550 5.7.26'
absent INBOX "forged reject" || fail "the refused message is in INBOX"
absent Junk "forged reject" || fail "the refused message is in Junk"
step "3. forged, unsigned, p=quarantine: delivered into Junk"
message "News <news@quar.test>" "forged quarantine" "$work/msg/quar.eml"
accepted quar "$work/msg/quar.eml" news@quar.test
delivered Junk "forged quarantine" "$work/msg/quar.got" || fail "quarantine: $(delivered Junk "forged quarantine" /dev/null)"
absent INBOX "forged quarantine" || fail "the quarantined message is in INBOX too"
results facteur "$work/msg/quar.got" "$work/r3-quar"
cat "$work/r3-quar"
check_results "facteur on the quarantined message" "$work/r3-quar" "spf=fail" "dmarc=fail header.from=quar.test" "dkim=none"
step "3. Authentication-Results fields claiming mx.example.test are removed"
message "Someone <someone@elsewhere.test>" "forged results" "$work/msg/ar.raw"
{
    printf '%s\r\n' "Authentication-Results: mx.example.test; dkim=pass header.d=elsewhere.test; dmarc=pass header.from=elsewhere.test" \
        "Authentication-Results: MX.Example.TEST; spf=pass smtp.mailfrom=someone@elsewhere.test" \
        "Authentication-Results:" "	mx.example.test;" "	arc=pass" \
        "Authentication-Results: other.test; spf=pass smtp.mailfrom=elsewhere.test"
    cat "$work/msg/ar.raw"
} >"$work/msg/ar.eml"
accepted ar "$work/msg/ar.eml" someone@elsewhere.test
delivered INBOX "forged results" "$work/msg/ar.got" || fail "forged results: $(delivered INBOX "forged results" /dev/null)"
results facteur "$work/msg/ar.got" "$work/r3-ar" # fails unless exactly one mx.example.test field, the first
cat "$work/r3-ar"
check_results "facteur on the message with forged results" "$work/r3-ar" "dmarc!=pass" "spf!=pass" "arc!=pass" "spf=none" "dmarc=none"
grep -q '^Authentication-Results: other.test; spf=pass smtp.mailfrom=elsewhere.test' "$work/msg/ar.got" ||
    fail "another server's Authentication-Results was not kept: $(grep -A2 '^Authentication-Results' "$work/msg/ar.got")"
[ "$(grep -ci '^Authentication-Results:' "$work/msg/ar.got")" = 2 ] ||
    fail "want facteur's and other.test's Authentication-Results only: $(grep -i -A2 '^Authentication-Results' "$work/msg/ar.got")"

# ---------------------------------------------------------------------------------------------
# 4. spf_fail = "reject".
step "4. facteur restarted with [auth] spf_fail = \"reject\""
stop_facteur
sed -i 's/^spf_fail = "tag"$/spf_fail = "reject"/' "$work/facteur.toml"
grep -q '^spf_fail = "reject"$' "$work/facteur.toml" || fail "could not set spf_fail"
start_facteur
message "Someone <someone@spf.test>" "spf fail" "$work/msg/spf.eml"
refused spf-reject "$work/msg/spf.eml" someone@spf.test '550 5.7.23'
message "News <news@dkimpy.test>" "signed by dkimpy, spf_fail reject" "$work/msg/dkimpy2.raw"
aux sign-dkimpy "$work/msg/dkimpy2.raw" "$work/msg/dkimpy2.eml" "$work/keys" || fail "dkimpy could not sign"
accepted dkimpy-spf-reject "$work/msg/dkimpy2.eml" news@dkimpy.test
delivered INBOX "signed by dkimpy, spf_fail reject" "$work/msg/dkimpy2.got" || fail "dkimpy's message with spf_fail = reject was not delivered"
results facteur "$work/msg/dkimpy2.got" "$work/r4-dkimpy"
check_results "facteur on dkimpy's message (spf_fail = reject)" "$work/r4-dkimpy" \
    "dkim=pass header.d=dkimpy.test header.s=py-rsa" "dkim=pass header.d=dkimpy.test header.s=py-ed" \
    "spf=fail" "dmarc=pass header.from=dkimpy.test"

# ---------------------------------------------------------------------------------------------
# 5. Edge cases on which facteur must agree with dkimpy and OpenDKIM, or with the RFCs. A miss is
# recorded as a disagreement; all are listed at the end, and then the test fails.
disagreements=()
disagree() { echo "DISAGREEMENT: $1${2:+: $2}"; disagreements+=("$1"); }  # disagree WHAT [DETAILS]
agree() {  # agree WHAT RESULTS WANT...: as check_results, a miss recorded as a disagreement
    local what=$1 file=$2
    shift 2
    aux expect "$file" "$@" >"$file.why" 2>&1 || disagree "$what" "$(cat "$file.why")"
}
# A body whose last lines hold only blanks: relaxed body canonicalization (RFC 6376 §3.4.4)
# removes the blanks at the end of each line, then all empty lines at the end of the body, so
# its canonical form is "Blank lines follow.\r\n".
blank_tail() {  # blank_tail FROM TO SUBJECT
    printf '%s\r\n' "From: $1" "To: $2" "Subject: $3" "Date: Mon, 23 Nov 2026 12:00:00 +0000" \
        "Message-ID: <$(echo "$3" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9\n' -)@interop.test>" "" \
        "Blank lines follow." " " "	" "  	 " ""
}
step "5. facteur signs a body ending in blank-only lines; dkimpy and OpenDKIM verify"
blank_tail "Alice <alice@example.test>" "someone@sink.test" "blank tail signed by facteur" >"$work/msg/blank-signed.eml"
"$py" - "$sub" "$pass" "$work/msg/blank-signed.eml" <<'PY' >"$work/submit2.out" 2>&1 || fail "submission: $(cat "$work/submit2.out")"
import smtplib, sys
port, password, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.login("alice@example.test", password)
s.sendmail("alice@example.test", ["someone@sink.test"], open(path, "rb").read())
s.quit()
PY
for _ in $(seq 300); do [ -e "$work/sink/2.eml" ] && break; sleep 0.1; done
[ -e "$work/sink/2.eml" ] || fail "the sink did not get the second message in 30 s"
grep -q '^Subject: blank tail signed by facteur' "$work/sink/2.eml" || fail "the sink's second message is not the one expected"
for v in dkimpy opendkim; do
    results "$v" "$work/sink/2.eml" "$work/r5-$v-blank"
    cat "$work/r5-$v-blank"
    agree "$v fails facteur's signatures of a body ending in blank-only lines" "$work/r5-$v-blank" \
        "dkim=pass header.a=rsa-sha256 header.d=example.test header.s=$rsa_sel" \
        "dkim=pass header.a=ed25519-sha256 header.d=example.test header.s=$ed_sel"
done
step "5. dkimpy signs (relaxed/relaxed) a body ending in blank-only lines for dkimpy.test; to facteur's MX"
blank_tail "News <news@dkimpy.test>" "Bob <bob@example.test>" "blank tail signed by dkimpy" >"$work/msg/blank-dkimpy.raw"
aux sign-one "$work/msg/blank-dkimpy.raw" "$work/msg/blank-dkimpy.eml" "$work/keys/py-rsa.key" py-rsa rsa-sha256 relaxed/relaxed ||
    fail "dkimpy could not sign"
results dkimpy "$work/msg/blank-dkimpy.eml" "$work/r5-dkimpy-blank-self"
results opendkim "$work/msg/blank-dkimpy.eml" "$work/r5-opendkim-blank-self"
check_results "dkimpy on its own message" "$work/r5-dkimpy-blank-self" "dkim=pass header.s=py-rsa"
check_results "OpenDKIM on dkimpy's message" "$work/r5-opendkim-blank-self" "dkim=pass header.s=py-rsa"
echo "dkimpy and OpenDKIM on it: dkim=pass"
# SPF fails for dkimpy.test (and spf_fail is reject), its DMARC policy is reject: this
# signature is all that lets it in.
if mx_send blank-dkimpy "$work/msg/blank-dkimpy.eml" news@dkimpy.test && grep -q '^<-  250 2.0.0' "$work/blank-dkimpy"; then
    delivered INBOX "blank tail signed by dkimpy" "$work/msg/blank-dkimpy.got" || fail "accepted but not delivered"
    results facteur "$work/msg/blank-dkimpy.got" "$work/r5-blank"
    cat "$work/r5-blank"
    agree "facteur does not pass dkimpy's signature of a body ending in blank-only lines" "$work/r5-blank" \
        "dkim=pass header.d=dkimpy.test header.s=py-rsa" "dmarc=pass header.from=dkimpy.test"
else
    disagree "facteur refused dkimpy's message whose body ends in blank-only lines (dkimpy and OpenDKIM: dkim=pass)" \
        "$(grep '^<\*\*' "$work/blank-dkimpy" | tail -1)"
fi
# Both other checks use dkimpy's RSA key under other selectors of dkimpy.test, whose records
# differ from py-rsa's in their h= tag only. SPF fails for dkimpy.test and spf_fail is reject:
# without a valid DKIM signature aligned with it, the message must be refused (550 5.7.23, or
# 5.7.26).
not_counted() {  # not_counted NAME FILE WHY: facteur must refuse FILE, signed by dkimpy.test
    if mx_send "$1" "$2" news@dkimpy.test; then
        disagree "facteur accepted a message whose only DKIM signature $3, as DKIM-aligned (DMARC pass)" \
            "$(grep '^<-  250 2.0.0' "$work/$1")"
    else
        grep -qE '^<\*\* +550 5\.7\.2[36]' "$work/$1" || fail "swaks $1: want 550 5.7.23 or 5.7.26: $(replies "$1")"
    fi
}
step "5. rsa-sha256 under a key whose record says h=sha1 (RFC 6376 §3.6.1, §6.1.2: the verifier must ignore that key)"
message "News <news@dkimpy.test>" "signed under an h=sha1 key" "$work/msg/hsha1.raw"
aux sign-one "$work/msg/hsha1.raw" "$work/msg/hsha1.eml" "$work/keys/py-rsa.key" py-hsha1 rsa-sha256 relaxed/relaxed || fail "dkimpy could not sign"
results dkimpy "$work/msg/hsha1.eml" "$work/r5-dkimpy-hsha1"
results opendkim "$work/msg/hsha1.eml" "$work/r5-opendkim-hsha1"
echo "dkimpy: $(grep -o 'dkim=[a-z]*' "$work/r5-dkimpy-hsha1"); OpenDKIM: $(grep -o 'dkim=[a-z]* reason="[^"]*"' "$work/r5-opendkim-hsha1")"
check_results "OpenDKIM on a signature whose key says h=sha1" "$work/r5-opendkim-hsha1" "dkim=fail header.s=py-hsha1"
not_counted hsha1 "$work/msg/hsha1.eml" "is rsa-sha256 under a key record restricted to h=sha1 (OpenDKIM: dkim=fail, signature-key hash mismatch)"
step "5. rsa-sha1 (RFC 8301 §3.1: verifiers must not consider it valid), key record without h="
message "News <news@dkimpy.test>" "signed with rsa-sha1" "$work/msg/sha1.raw"
aux sign-one "$work/msg/sha1.raw" "$work/msg/sha1.eml" "$work/keys/py-rsa.key" py-noh rsa-sha1 relaxed/relaxed || fail "dkimpy could not sign"
results dkimpy "$work/msg/sha1.eml" "$work/r5-dkimpy-sha1"
results opendkim "$work/msg/sha1.eml" "$work/r5-opendkim-sha1"
echo "dkimpy: $(grep -o 'dkim=[a-z]*' "$work/r5-dkimpy-sha1"); OpenDKIM: $(grep -o 'dkim=[a-z]*' "$work/r5-opendkim-sha1") (both still accept rsa-sha1)"
not_counted sha1 "$work/msg/sha1.eml" "is rsa-sha1 (RFC 8301 §3.1)"
step "5. l= (RFC 6376 §8.2) covering the whole body, dkimpy for dkimpy.test (a note, not a check)"
message "News <news@dkimpy.test>" "signed with l=" "$work/msg/len.raw"
aux sign-one "$work/msg/len.raw" "$work/msg/len.eml" "$work/keys/py-ed.key" py-ed ed25519-sha256 relaxed/relaxed 1 || fail "dkimpy could not sign"
if mx_send len "$work/msg/len.eml" news@dkimpy.test; then
    echo "note: facteur counts a signature with l= (dkimpy and OpenDKIM pass it)"
else
    echo "note: facteur does not count signatures with l=, even covering the whole body (dkimpy and OpenDKIM pass them): $(grep -E '^<\*\*' "$work/len" | tail -1)"
fi

# Every name asked was answered from the loopback server's own data.
grep -q 'query\[TXT\] rsa-[0-9a-z]*\._domainkey\.example\.test' "$work/dns.log" || fail "no DKIM key query for example.test in dnsmasq's log"
grep -q 'query\[TXT\] py-ed\._domainkey\.dkimpy\.test' "$work/dns.log" || fail "no query for dkimpy's Ed25519 key in dnsmasq's log"
f store check >/dev/null || fail "store check"
if [ "${#disagreements[@]}" -gt 0 ]; then
    echo "FAIL: facteur disagrees with dkimpy/OpenDKIM or an RFC (every other check passed):"
    printf '  - %s\n' "${disagreements[@]}"
    echo "--- facteur log"; grep -E ' authentication | message refused ' "$work/facteur.log" | tail -4
    exit 1
fi
echo "auth interop ok: facteur's RSA and Ed25519 signatures verified by dkimpy and OpenDKIM (tampered copies fail), dkimpy's and OpenDKIM's RSA and Ed25519 signatures verified by facteur (dkim=pass, dmarc=pass; tampered 550 5.7.26), dkimpy's ARC seal (arc=pass, changed: fail), DMARC reject 550 5.7.26 and quarantine to Junk, forged Authentication-Results removed, spf_fail=reject 550 5.7.23, canonicalization and key edge cases agree; DNS from dnsmasq"
