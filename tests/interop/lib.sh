# Shared by the interop tests and the benchmarks: ports, waits, a work directory, a private
# Postfix instance. Source it; it defines functions only.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 10 s for 127.0.0.1:$1 to accept connections.
wait_port() {
    for _ in $(seq 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}

# A temporary directory the unprivileged user facteur switches to (nobody) can reach.
new_workdir() {
    local d
    d=$(mktemp -d)
    chmod 755 "$d"
    echo "$d"
}

# Installs Debian packages when a command is missing: apt_need COMMAND PACKAGE...
apt_need() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null && return 0
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

# A private Postfix instance in DIR listening on 127.0.0.1:PORT, never the system one:
# private_postfix DIR PORT RELAY_DOMAINS TRANSPORTS [EXTRA_MAIN_CF]. Start it with
# `postfix -c DIR/etc start`, stop it with `postfix -c DIR/etc stop`.
private_postfix() {
    local pf=$1 port=$2 domains=$3 transports=$4 extra=${5:-}
    mkdir -p "$pf/etc" "$pf/queue" "$pf/data"
    cp /etc/postfix/master.cf "$pf/etc/master.cf"
    chown postfix "$pf/data"
    cat >"$pf/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.example.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = $domains
transport_maps = inline:{ $transports }
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
local_header_rewrite_clients =
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
biff = no
$extra
CONF
    postconf -c "$pf/etc" -F '*/*/chroot = n'
    # The MTA listens on a loopback port of its own instead of 25.
    sed -E -i "s/^smtp[[:space:]]+inet[[:space:]].*smtpd\$/127.0.0.1:$port inet n - n - - smtpd/" "$pf/etc/master.cf"
    grep -q "^127.0.0.1:$port inet" "$pf/etc/master.cf"
}
