#!/usr/bin/env bash
# IMAP benchmark: facteur against Dovecot's IMAP on the same machine.
#
# Each server gets one account whose INBOX is filled over LMTP with the same MESSAGES varied
# messages (Dovecot: Maildir through dovecot-lmtpd). Then, one server at a time:
#   - a single client times SELECT INBOX, FETCH 1:* (UID FLAGS), UID SEARCH HEADER Subject,
#     UID SEARCH BODY and a CONDSTORE UID STORE (UNCHANGEDSINCE) +FLAGS (\Flagged);
#   - imaptest (Dovecot's IMAP stress tester, $IMAPTEST or /opt/imaptest/imaptest) runs
#     STRESS_CLIENTS clients for STRESS_SECS seconds on a mailbox of its own, and its scripted
#     compliance tests ($IMAPTEST_TESTS or /opt/imaptest/tests);
#   - IDLE_CLIENTS connections log in, SELECT INBOX and IDLE: the server's memory before and
#     after, per connection (facteur: its process; Dovecot: all its imap processes).
# Plain IMAP with plaintext login on loopback for both, so TLS is not measured. Both check the
# same Argon2id hash (facteur's, copied into Dovecot's passwd-file) and both cache logins.
#
#   MESSAGES=100000 IDLE_CLIENTS=10000 bench/imap/run.sh
#   SERVERS=dovecot MESSAGES=5000 IDLE_CLIENTS=500 bench/imap/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/tests/interop/lib.sh"
MESSAGES=${MESSAGES:-100000}
REPEAT=${REPEAT:-3}                 # each timed command runs this often: first, then best of the rest
FILL_CONNS=${FILL_CONNS:-4}         # parallel LMTP sessions filling the INBOX
STRESS_CLIENTS=${STRESS_CLIENTS:-50}
STRESS_SECS=${STRESS_SECS:-30}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
SERVERS=${SERVERS:-facteur dovecot}
DOVECOT_HIBERNATE=${DOVECOT_HIBERNATE:-0}    # >0: imap_hibernate_timeout in seconds (off by default, as in Dovecot)
DOVECOT_PASSWORD=${DOVECOT_PASSWORD:-hash}   # plain: {PLAIN} in Dovecot's passwd-file, to see its cost without hashing
IMAPTEST=${IMAPTEST:-/opt/imaptest/imaptest}
IMAPTEST_TESTS=${IMAPTEST_TESTS:-$(dirname "$IMAPTEST")/tests}
SUBJECT_WORD=zanzibar               # in the Subject of every 10,007th message
BODY_WORD=quokka                    # in the body of every 7,919th message
user=u@example.test
pass=secret

if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/lmtp ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 dovecot-core dovecot-imapd dovecot-lmtpd >/dev/null
fi
if [ -x "$IMAPTEST" ]; then have_imaptest=1; else
    have_imaptest=0; echo "no imaptest at $IMAPTEST (set IMAPTEST): stress and compliance parts skipped" >&2
fi
# One process holds every IDLE connection; the servers need as many descriptors.
ulimit -n "$(ulimit -Hn)"
if [ "$IDLE_CLIENTS" -gt $(( $(ulimit -n) - 200 )) ]; then
    IDLE_CLIENTS=$(( $(ulimit -n) - 200 ))
    echo "open-file limit $(ulimit -n): IDLE_CLIENTS lowered to $IDLE_CLIENTS" >&2
fi
case " $SERVERS " in *" facteur "*)
    if ! grep -q imaps "$root/crates/config/src/lib.rs"; then
        echo "facteur has no IMAP yet (no listen.imaps in crates/config): facteur skipped" >&2
        SERVERS=${SERVERS//facteur/}
    elif [ -n "${FACTEUR_BIN:-}" ]; then bin=$FACTEUR_BIN
    else (cd "$root" && cargo build --release -q -p facteur); bin=$root/target/release/facteur
    fi
esac

# Like new_workdir, under a name of its own: a long run must not be taken for a test's leftover.
work=$(mktemp -d -t facteur-imap-bench.XXXXXX)
chmod 755 "$work"
pids=()
inotify_restore=
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/dovecot.conf" ] && dovecot -c "$work/dovecot.conf" stop 2>/dev/null || true
    wait 2>/dev/null || true
    [ -z "$inotify_restore" ] || echo "$inotify_restore" >/proc/sys/fs/inotify/max_user_instances
    if [ -n "${LOGS:-}" ]; then
        mkdir -p "$LOGS"
        cp "$work"/*.result "$work"/*.imaptest "$work"/*.compliance "$work"/facteur.log "$work"/dovecot/dovecot.log "$LOGS"/ 2>/dev/null || true
        echo "logs in $LOGS" >&2
    fi
    if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
py=$work/imapbench.py
cat >"$py" <<'PY'
"""Helper of bench/imap/run.sh: fill (LMTP), ops (timed IMAP commands), idle (memory of IDLE connections)."""
import os, random, re, selectors, socket, smtplib, sys, time
from multiprocessing import Pool

WORDS = ("able acid aged also area army away baby back ball band bank base bath bear beat bell "
         "belt best bird blow blue boat body bone book boot born boss both bowl burn bush busy "
         "call calm came camp card care case cash cast cell chat chip city club coal coat code "
         "cold come cook cool cope copy core cost crew crop dark data date dawn days dead deal "
         "dean dear debt deep deny desk dial diet disk door dose down draw drew drop drug dual "
         "duke dust duty each earn ease east easy edge else even ever evil exit face fact fail "
         "fair fall farm fast fate fear feed feel file fill film find fine fire firm fish five "
         "flat flow food foot form fort four free from fuel full fund gain game gate gave gear "
         "gift girl give glad goal goes gold golf gone good gray grew grey grow gulf hair half "
         "hall hand hang hard harm hate have head hear heat held hell help here hero high hill "
         "hire hold hole holy home hope host hour huge hung hunt hurt idea inch into iron item "
         "jack jane jean john join jump jury just keen keep kent kept kick kill kind king knee "
         "knew know lack lady laid lake land lane last late lead left less life lift like line "
         "link list live load loan lock logo long look lord lose loss lost love luck made mail "
         "main make male many mark mass meal mean meat meet menu mere mike mile milk mill mind "
         "mine miss mode mood moon more most move much must name navy near neck need news next "
         "nice nick nine none nose note okay once only onto open oral over pace pack page paid "
         "pain pair palm park part pass past path peak pick pink pipe plan play plot plug plus "
         "poll pool poor port post pull pure push race rail rain rank rare rate read real rear "
         "rely rent rest rice rich ride ring rise risk road rock role roll roof room root rose "
         "rule rush ruth safe said sake sale salt same sand save seat seed seek seem seen self "
         "sell send sent sept ship shop shot show shut sick side sign site size skin slip slow "
         "snow soft soil sold sole some song soon sort soul spot star stay step stop such suit "
         "sure take tale talk tall tank tape task team tech tell tend term test text than that "
         "them then they thin this thus till time tiny told toll tone tony took tool tour town "
         "tree trip true tune turn twin type unit upon used user vary vast very vice view vote "
         "wage wait wake walk wall want ward warm wash wave ways weak wear week well went were "
         "west what when whom wide wife wild will wind wine wing wire wise wish with wood word "
         "wore work yard yeah year your zero zone").split()
FIRST = "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent victor walter".split()
DOMAINS = ["sender%d.test" % i for i in range(1, 41)]


def message(i, subject_word, body_word):
    """Message i of the data set; the same bytes for every server."""
    r = random.Random(i)
    name = r.choice(FIRST)
    frm = f"{name}.{r.choice(WORDS)}@{r.choice(DOMAINS)}"
    subject = [r.choice(WORDS) for _ in range(r.randint(3, 7))]
    if i % 10007 == 0:
        subject.insert(r.randint(0, len(subject)), subject_word)
    lines = []
    for _ in range(r.randint(4, 60)):
        lines.append(" ".join(r.choice(WORDS) for _ in range(r.randint(8, 15))))
    if i % 7919 == 3:
        lines.insert(r.randint(0, len(lines)), f"see the {body_word} in the attached notes")
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(1700000000 + i * 37))
    head = (f"From: {name.title()} <{frm}>\r\nTo: u@example.test\r\nSubject: {' '.join(subject).capitalize()}\r\n"
            f"Date: {date}\r\nMessage-ID: <{i}.bench@{frm.split('@')[1]}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
    return (head + "\r\n".join(lines) + "\r\n").encode()


def fill_worker(args):
    port, rcpt, n, conns, w, sw, bw = args
    c = smtplib.LMTP("127.0.0.1", port)
    c.ehlo("fill.test")
    sent = 0
    for i in range(w, n, conns):
        c.sendmail("fill@client.test", [rcpt], message(i, sw, bw))
        sent += 1
    c.quit()
    return sent


def fill(port, rcpt, n, conns, sw, bw):
    conns = int(conns)
    t0 = time.time()
    with Pool(conns) as p:
        sent = sum(p.map(fill_worker, [(int(port), rcpt, int(n), int(conns), w, sw, bw) for w in range(int(conns))]))
    dt = time.time() - t0
    print(f"fill_msgs_per_s {sent / dt:.0f}")
    print(f"fill_secs {dt:.1f}", file=sys.stderr)


class Conn:
    """Just enough IMAP: send a tagged command, read until its tagged reply (no literals expected)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", int(port)), 30)
        self.s.settimeout(600)
        self.buf = bytearray()
        self.chunk = bytearray(1 << 20)
        self.n = 0
        while b"\r\n" not in self.buf:
            self.recv()
        k = self.buf.find(b"\r\n")
        self.greeting, self.buf = bytes(self.buf[:k]), self.buf[k + 2:]

    def recv(self):
        n = self.s.recv_into(self.chunk)
        if not n:
            raise EOFError("server closed the connection")
        self.buf += memoryview(self.chunk)[:n]

    def cmd(self, text, ok=True):
        """Returns (seconds, untagged lines, tagged line)."""
        self.n += 1
        tag = b"t%d" % self.n
        t0 = time.perf_counter()
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        start = 0
        while True:
            k = self.buf.find(b"\r\n" + tag + b" ", max(0, start - len(tag) - 3))
            if self.buf.startswith(tag + b" "):
                k = -2
            if k != -1:
                end = self.buf.find(b"\r\n", k + 2)
                if end != -1:
                    break
            start = len(self.buf)
            self.recv()
        dt = time.perf_counter() - t0
        body, tagged = bytes(self.buf[:k + 2]), bytes(self.buf[k + 2:end])
        del self.buf[:end + 2]
        if ok and not tagged.startswith(tag + b" OK"):
            raise RuntimeError(f"C: {tag.decode()} {text}\nS: {tagged.decode(errors='replace')}\n"
                               f"{body[-2000:].decode(errors='replace')}")
        return dt, body.split(b"\r\n")[:-1] if body else [], tagged


def ops(port, user, pw, n, sw, bw, repeat):
    n, repeat = int(n), int(repeat)
    out = {}
    c = Conn(port)
    c.cmd(f'LOGIN "{user}" "{pw}"')

    def timed(key, command, check=None):
        times = []
        for _ in range(repeat):
            dt, lines, _ = c.cmd(command)
            times.append(dt)
            if check:
                check(lines)
        out[key + "_first"] = times[0]
        out[key] = min(times[1:]) if len(times) > 1 else times[0]
        return lines

    def exists(lines):
        got = [l for l in lines if l.endswith(b" EXISTS")]
        assert got and int(got[0].split()[1]) == n, f"SELECT: {got} (want {n})"

    timed("select", "SELECT INBOX", exists)
    uids = []

    def fetched(lines):
        uids.clear()
        for l in lines:
            m = re.search(rb"UID (\d+)", l)
            if m and l.startswith(b"* "):
                uids.append(int(m.group(1)))
        assert len(uids) == n, f"FETCH 1:* returned {len(uids)} of {n}"

    timed("fetch_uid_flags", "FETCH 1:* (UID FLAGS)", fetched)
    hits = {}

    def searched(key):
        def f(lines):
            s = [l for l in lines if l.startswith(b"* SEARCH")]
            hits[key] = len(s[0].split()) - 2 if s else 0
        return f

    timed("search_subject", f"UID SEARCH HEADER Subject {sw}", searched("subject"))
    timed("search_body", f"UID SEARCH BODY {bw}", searched("body"))
    out["search_subject_hits"] = hits["subject"]
    out["search_body_hits"] = hits["body"]
    want_s = len(range(0, n, 10007))
    want_b = len(range(3, n, 7919))
    if hits["subject"] != want_s or hits["body"] != want_b:
        print(f"warning: searches found {hits['subject']} and {hits['body']} messages, expected {want_s} and {want_b}",
              file=sys.stderr)
    c.cmd("ENABLE CONDSTORE")
    times = []
    for k in range(repeat):
        uid = uids[(k + 1) * len(uids) // (repeat + 1)]
        _, lines, _ = c.cmd(f"UID FETCH {uid} (MODSEQ)")
        m = re.search(rb"MODSEQ \((\d+)\)", b" ".join(lines))
        assert m, f"UID FETCH {uid} (MODSEQ): {lines}"
        dt, lines, _ = c.cmd(f"UID STORE {uid} (UNCHANGEDSINCE {int(m.group(1))}) +FLAGS (\\Flagged)")
        assert any(b"FLAGGED" in l.upper() for l in lines), f"UID STORE {uid}: {lines}"
        times.append(dt)
    out["store_condstore_first"] = times[0]
    out["store_condstore"] = min(times)
    c.cmd("CREATE stress", ok=False)  # imaptest's stress run works there, not in INBOX
    c.cmd("LOGOUT", ok=False)
    for k, v in out.items():
        print(k, v)


def pids_of(spec):
    """facteur:PID -> [PID]; dovecot:MASTERPID -> its imap processes."""
    kind, pid = spec.split(":")
    if kind == "facteur":
        return [int(pid)]
    res = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == int(pid) and comm in ("imap", "imap-hibernate"):
            res.append(int(p))
    return res


def memory(spec):
    """(RSS KiB, PSS KiB, process count) summed over the server's processes."""
    rss = pss = 0
    ps = pids_of(spec)
    for p in ps:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for l in f:
                    if l.startswith("Rss:"):
                        rss += int(l.split()[1])
                    elif l.startswith("Pss:"):
                        pss += int(l.split()[1])
        except OSError:
            pass
    return rss, pss, len(ps)


def mem_available_low():
    """True when less than a fifth of the machine's memory (at least 2 GiB) is left."""
    info = {}
    with open("/proc/meminfo") as f:
        for l in f:
            k, v = l.split(":", 1)
            info[k] = int(v.split()[0])
    return info["MemAvailable"] < max(2 << 20, info["MemTotal"] // 5)


def idle(port, user, pw, n, spec, settle):
    n = int(n)
    rss0, pss0, np0 = memory(spec)
    sel = selectors.DefaultSelector()
    steps = [None, f'a LOGIN "{user}" "{pw}"\r\n', "b SELECT INBOX\r\n", "c IDLE\r\n"]
    want = [b"* OK", b"a OK", b"b OK", b"+ "]
    conns, idling, failed, opened = {}, 0, 0, 0
    inflight_max = 100
    deadline = time.time() + max(300, n / 5)
    t0 = time.time()
    guard = False
    while idling + failed < n and time.time() < deadline:
        if guard or (opened < n and mem_available_low()):
            # Each Dovecot connection is a process of its own: stop before the machine runs out.
            if not guard:
                print(f"idle: memory guard: stopped opening connections at {opened} of {n}", file=sys.stderr)
            guard = True
            if opened == idling + failed:
                break
        while not guard and opened < n and opened - idling - failed < inflight_max:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", int(port)))
            conns[s] = [0, b""]
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        for key, _ in sel.select(1):
            s = key.fileobj
            st = conns[s]
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(s); s.close(); del conns[s]; failed += 1
                if failed <= 3:
                    print(f"idle: connection closed at step {st[0]}: {st[1][-300:]!r}", file=sys.stderr)
                continue
            st[1] += d
            while True:
                lines = st[1].split(b"\r\n")
                done = next((l for l in lines[:-1] if l.startswith(want[st[0]])), None)
                bad = next((l for l in lines[:-1] if st[0] in (1, 2) and l[:1] in b"ab" and not l.startswith(want[st[0]])), None)
                if bad:
                    sel.unregister(s); s.close(); del conns[s]; failed += 1
                    if failed <= 3:
                        print(f"idle: step {st[0]} refused: {bad!r}", file=sys.stderr)
                    break
                if done is None:
                    break
                st[1] = b""
                st[0] += 1
                if st[0] == 4:
                    idling += 1
                    sel.unregister(s)
                    break
                s.send(steps[st[0]].encode())
    setup = time.time() - t0
    time.sleep(float(settle))
    rss1, pss1, np1 = memory(spec)
    n_ok = max(idling, 1)
    print(f"idle_connections {idling}")
    print(f"idle_failed {failed}")
    print(f"idle_setup_per_s {idling / setup:.0f}")
    print(f"idle_kib_per_conn_rss {(rss1 - rss0) / n_ok:.1f}")
    print(f"idle_kib_per_conn_pss {(pss1 - pss0) / n_ok:.1f}")
    print(f"idle_rss_before_kib {rss0}")
    print(f"idle_rss_after_kib {rss1}")
    print(f"idle_processes {np1}")
    for s in list(conns):
        try:
            s.send(b"DONE\r\nd LOGOUT\r\n")
        except OSError:
            pass
        s.close()


def mbox(n, path):
    """An mbox of n messages of the data set, for imaptest's mbox= (it APPENDs from it)."""
    with open(path, "w") as f:
        for i in range(int(n)):
            t = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(1700000000 + i * 37))
            f.write(f"From fill@client.test {t}\n" + message(i, "", "").decode().replace("\r\n", "\n") + "\n")


def totals(log, secs):
    """imaptest's Totals block as commands per second, and its error count."""
    lines = open(log, errors="replace").read().splitlines()
    errors = [l for l in lines if "Error:" in l or "Panic:" in l or "Fatal:" in l]
    print(f"imaptest_errors {len(errors)}")
    for l in errors[:5]:
        print(f"imaptest error: {l[:300]}", file=sys.stderr)
    try:
        k = lines.index("Totals:")
    except ValueError:
        print("imaptest printed no Totals: " + " | ".join(lines[-5:]), file=sys.stderr)
        return
    names = lines[k + 1].split()
    for l in lines[k + 2:]:
        v = l.split()
        if len(v) == len(names) and all(x.isdigit() for x in v):
            for name, x in zip(names, v):
                print(f"stress_{name} {int(x) / float(secs):.1f}")
            print(f"stress_all {sum(int(x) for x in v) / float(secs):.1f}")
            return


def compliance(log):
    text = open(log, errors="replace").read()
    m = re.search(r"(\d+) test groups: (\d+) failed, (\d+) skipped", text)
    b = re.search(r"base protocol: (\d+)/(\d+) individual", text)
    e = re.search(r"extensions: (\d+)/(\d+) individual", text)
    if not (m and b and e):
        print("imaptest compliance printed no summary: " + text[-300:], file=sys.stderr)
        return
    print(f"compliance_groups {m.group(2)}/{m.group(1)}")
    print(f"compliance_skipped {m.group(3)}")
    print(f"compliance_commands {int(b.group(1)) + int(e.group(1))}/{int(b.group(2)) + int(e.group(2))}")


ROWS = [  # key, label, unit, scale, higher is better
    ("fill_msgs_per_s", "fill INBOX over LMTP", "msg/s", 1, True),
    ("select_first", "SELECT INBOX, first", "ms", 1000, False),
    ("select", "SELECT INBOX, again", "ms", 1000, False),
    ("fetch_uid_flags_first", "FETCH 1:* (UID FLAGS), first", "ms", 1000, False),
    ("fetch_uid_flags", "FETCH 1:* (UID FLAGS), again", "ms", 1000, False),
    ("search_subject_first", "UID SEARCH HEADER Subject, first", "ms", 1000, False),
    ("search_subject", "UID SEARCH HEADER Subject, again", "ms", 1000, False),
    ("search_body_first", "UID SEARCH BODY, first", "ms", 1000, False),
    ("search_body", "UID SEARCH BODY, again", "ms", 1000, False),
    ("store_condstore", "UID STORE UNCHANGEDSINCE +FLAGS", "ms", 1000, False),
    ("search_subject_hits", "  subject hits", "", 1, None),
    ("search_body_hits", "  body hits", "", 1, None),
]
STRESS = "Logi List Stat Sele Fetc Fet2 Stor Dele Expu Appe Logo all".split()
ROWS += [(f"stress_{c}", f"imaptest {c}", "/s", 1, True) for c in STRESS]
ROWS += [
    ("imaptest_errors", "imaptest errors", "", 1, None),
    ("idle_connections", "IDLE connections", "", 1, None),
    ("idle_setup_per_s", "IDLE: LOGIN+SELECT+IDLE set up", "/s", 1, True),
    ("idle_kib_per_conn_rss", "IDLE memory per conn (RSS)", "KiB", 1, False),
    ("idle_kib_per_conn_pss", "IDLE memory per conn (PSS)", "KiB", 1, False),
    ("idle_processes", "  server processes then", "", 1, None),
    ("compliance_groups", "compliance groups failed", "", 1, None),
    ("compliance_skipped", "compliance groups skipped", "", 1, None),
    ("compliance_commands", "compliance commands failed", "", 1, None),
]


def table(*files):
    res = []
    for f in files:
        d = {}
        if os.path.exists(f):
            for l in open(f):
                k, _, v = l.strip().partition(" ")
                d[k] = v
        res.append(d)
    fa, dv = res
    print(f"{'operation':<36} {'unit':>5} {'facteur':>10} {'Dovecot':>10} {'facteur better by':>18}")

    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    for key, label, unit, scale, higher in ROWS:
        a, b = fa.get(key), dv.get(key)
        if a is None and b is None:
            continue
        cells = []
        for v in (a, b):
            x = num(v)
            cells.append("-" if v is None else (f"{x * scale:.1f}" if x is not None and scale != 1 or (x is not None and not x.is_integer()) else v))
        ratio = ""
        x, y = num(a), num(b)
        if higher is not None and x and y:
            ratio = f"{(x / y if higher else y / x):.2f}x"
        print(f"{label:<36} {unit:>5} {cells[0]:>10} {cells[1]:>10} {ratio:>18}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"fill": fill, "ops": ops, "idle": idle, "mbox": mbox, "totals": totals,
     "compliance": compliance, "table": table}[cmd](*args)
PY
# imaptest APPENDs from an mbox: 1000 messages of the same kind.
python3 "$py" mbox 1000 "$work/stress.mbox"

# stress NAME PORT: imaptest's default command mix on mailbox "stress"; the Totals per second.
stress() {
    [ "$have_imaptest" = 1 ] || return 0
    local log=$work/$1.imaptest
    timeout $((STRESS_SECS + 120)) "$IMAPTEST" host=127.0.0.1 port="$2" user="$user" pass="$pass" \
        mbox="$work/stress.mbox" box=stress clients="$STRESS_CLIENTS" secs="$STRESS_SECS" >"$log" 2>&1 || true
    python3 "$py" totals "$log" "$STRESS_SECS"
}
# compliance NAME PORT: imaptest's scripted tests.
compliance() {
    [ "$have_imaptest" = 1 ] && [ -d "$IMAPTEST_TESTS" ] || return 0
    local log=$work/$1.compliance
    timeout 600 "$IMAPTEST" host=127.0.0.1 port="$2" user="$user" pass="$pass" test="$IMAPTEST_TESTS" >"$log" 2>&1 || true
    python3 "$py" compliance "$log"
}
# measure NAME IMAP_PORT LMTP_PORT MEMSPEC [SETTLE]: every phase; "key value" lines in
# $work/NAME.result. SETTLE: seconds between the last IDLE and the memory reading.
measure() {
    local name=$1 port=$2 lport=$3 spec=$4 settle=${5:-5} out=$work/$1.result
    echo "$name: filling INBOX with $MESSAGES messages over LMTP" >&2
    timeout 7200 python3 "$py" fill "$lport" "$user" "$MESSAGES" "$FILL_CONNS" "$SUBJECT_WORD" "$BODY_WORD" >"$out" || return 1
    echo "$name: timed commands" >&2
    timeout 3600 python3 "$py" ops "$port" "$user" "$pass" "$MESSAGES" "$SUBJECT_WORD" "$BODY_WORD" "$REPEAT" >>"$out" || return 1
    echo "$name: imaptest stress" >&2
    stress "$name" "$port" >>"$out"
    echo "$name: $IDLE_CLIENTS connections in IDLE" >&2
    timeout $((900 + IDLE_CLIENTS / 4)) python3 "$py" idle "$port" "$user" "$pass" "$IDLE_CLIENTS" "$spec" "$settle" >>"$out"
    echo "$name: imaptest compliance" >&2
    compliance "$name" "$port" >>"$out"
}

# The Argon2id hash (PHC string) of the account in a facteur database.
facteur_hash() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT password FROM accounts").fetchone()[0])
PY
}

# --- facteur: mail arrives over LMTP, as from an MTA in front of it.
hash=
run_facteur() {
    local iport lport f
    iport=$(free_port); lport=$(free_port)
    cat >"$work/facteur.toml" <<CONF
hostname = "mx.example.test"
data_dir = "$work/facteur-data"
[listen]
smtp = []
lmtp = ["127.0.0.1:$lport"]
pop3 = []
pop3s = []
imap = ["127.0.0.1:$iport"]
imaps = []
submission = []
submissions = []
http = []
[imap]
plaintext_auth = true
max_connections = $((IDLE_CLIENTS + 1000))
max_connections_per_ip = $((IDLE_CLIENTS + 1000))
max_connections_per_user_ip = $((IDLE_CLIENTS + 1000))
CONF
    f=(env FACTEUR_LOG=warn "$bin" --config "$work/facteur.toml")
    "${f[@]}" domain add example.test >/dev/null
    printf '%s\n' "$pass" | "${f[@]}" account add "$user" --password-stdin >/dev/null
    hash=$(facteur_hash "$work/facteur-data/facteur.db")
    "${f[@]}" serve 2>"$work/facteur.log" &
    pids+=($!)
    local pid=$!
    wait_port "$iport"; wait_port "$lport"
    measure facteur "$iport" "$lport" "facteur:$pid" || echo "facteur: a phase failed (log: $(tail -5 "$work/facteur.log"))" >&2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# --- Dovecot: Maildir, LMTP delivery, high-performance login processes, one imap process per
# connection (its default), the same Argon2id hash with an auth cache.
run_dovecot() {
    local iport lport d=$work/dovecot
    iport=$(free_port); lport=$(free_port)
    mkdir -p "$d/run" "$d/home"
    chown nobody:nogroup "$d/home"
    if [ -z "$hash" ]; then
        # facteur did not run: a hash with facteur's parameters all the same, if a binary is there.
        local hb=${FACTEUR_BIN:-$root/target/release/facteur}
        if [ -x "$hb" ]; then
            printf 'hostname = "mx.example.test"\ndata_dir = "%s"\n' "$work/hash-data" >"$work/hash.toml"
            "$hb" --config "$work/hash.toml" domain add example.test >/dev/null &&
                printf '%s\n' "$pass" | "$hb" --config "$work/hash.toml" account add "$user" --password-stdin >/dev/null &&
                hash=$(facteur_hash "$work/hash-data/facteur.db") || true
        fi
        [ -n "$hash" ] || hash=$(doveadm pw -s ARGON2ID -p "$pass" | sed 's/^{ARGON2ID}//')
    fi
    # Dovecot's IDLE (and hibernation) needs an inotify instance per connection; without one it
    # polls. Raised for the run, restored at exit.
    local inotify
    inotify=$(cat /proc/sys/fs/inotify/max_user_instances)
    if [ "$inotify" -lt $((IDLE_CLIENTS + 1000)) ] && echo $((IDLE_CLIENTS + 1000)) 2>/dev/null >/proc/sys/fs/inotify/max_user_instances; then
        inotify_restore=$inotify
    fi
    if [ "$DOVECOT_PASSWORD" = plain ]; then printf '%s:{PLAIN}%s\n' "$user" "$pass" >"$d/passwd"
    else printf '%s:{ARGON2ID}%s\n' "$user" "$hash" >"$d/passwd"; fi
    local hibernate=
    [ "$DOVECOT_HIBERNATE" -gt 0 ] && hibernate="imap_hibernate_timeout = ${DOVECOT_HIBERNATE}s
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0666
  }
}
service imap {
  unix_listener imap-master {
    mode = 0666
  }
}"
    local procs=$((IDLE_CLIENTS + 500))
    cat >"$work/dovecot.conf" <<CONF
protocols = imap lmtp
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
  args = uid=nobody gid=nogroup home=$d/home/%u
}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $iport
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
  process_limit = 8
  client_limit = 2000
}
service imap {
  process_limit = $procs
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lport
  }
  unix_listener lmtp {
    mode = 0
  }
}
service anvil {
  client_limit = $((procs + 1000))
}
service auth {
  client_limit = $((procs + 1000))
}
default_client_limit = $((procs + 1000))
mail_max_userip_connections = $procs
$hibernate
CONF
    dovecot -c "$work/dovecot.conf"
    wait_port "$iport"; wait_port "$lport"
    measure dovecot "$iport" "$lport" "dovecot:$(cat "$d/run/master.pid")" $((DOVECOT_HIBERNATE + 5)) || echo "dovecot: a phase failed (log: $(tail -5 "$d/dovecot.log"))" >&2
    grep -E 'Warning|Error|Fatal|Panic' "$d/dovecot.log" | grep -v Inotify | sed 's/^[A-Z][a-z]* [0-9 ]* [0-9:]* //' | sort | uniq -c | sort -rn | head -5 >&2 || true
    dovecot -c "$work/dovecot.conf" stop 2>/dev/null || true
}

for s in $SERVERS; do "run_$s"; done
echo
echo "IMAP: INBOX of $MESSAGES messages, timed commands first run and best of $REPEAT; imaptest $STRESS_CLIENTS clients x ${STRESS_SECS}s; $IDLE_CLIENTS IDLE connections"
python3 "$py" table "$work/facteur.result" "$work/dovecot.result"
