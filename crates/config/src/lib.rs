//! The configuration file: TOML, every key with a built-in default.
//!
//! Invariants: a missing file section means the defaults; an unknown key is an error (a typo
//! must not silently fall back to a default); every error names the file, the line and the key.
//! Each service receives its own section (`&Smtp`, `&StoreOptions`), never the whole tree.
#![forbid(unsafe_code)]

mod filters;

pub use filters::{Antivirus, CheckRule, Checks, Greylist, ListZone, Milter, RuleWord, Spam};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is the error's source: printed once by whoever prints the chain.
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name of this server in greetings, Received headers and its self-signed certificate.
    /// Default: the machine's hostname.
    pub hostname: String,
    /// Where facteur keeps everything: `facteur.db` (SQLite, WAL) and `blobs/`. Default:
    /// `./facteur-data`.
    pub data_dir: PathBuf,
    /// The system user to switch to after binding ports when started as root. Empty: `facteur`
    /// if that user exists, otherwise `nobody`. `root` keeps root privileges (not advised).
    pub run_as: String,
    /// What to do when a listen address cannot be bound: `exit` (default) stops with an error
    /// naming the key; `continue` logs it and keeps the other roles running.
    pub bind_failure: BindFailure,
    /// Time in seconds that shutdown waits for sessions in the middle of a message.
    pub shutdown_grace_secs: u64,
    pub listen: Listen,
    /// Certificates: the default one (`cert`, `key`), more per host name, reloading. Without
    /// any certificate (and no ACME one yet) a self-signed certificate for `hostname` is made
    /// once in `data_dir/tls/`.
    pub tls: Tls,
    /// Certificates obtained and renewed by facteur (RFC 8555). Absent: no ACME.
    pub acme: Option<Acme>,
    pub smtp: Smtp,
    pub pop3: Pop3,
    pub imap: Imap,
    pub submission: Submission,
    pub autoconfig: Autoconfig,
    pub directory: DirectoryOptions,
    /// OAuth 2.0 bearer tokens for XOAUTH2 and OAUTHBEARER (RFC 7628). Absent: not offered.
    pub oauth: Option<OAuth>,
    pub queue: Queue,
    /// How outbound delivery looks up MX, A/AAAA and TXT records.
    pub dns: Dns,
    /// SPF, DKIM, DMARC, ARC and iprev checks of mail received on the MX.
    pub auth: Auth,
    /// DKIM signing of mail from local domains, and key rotation.
    pub dkim: Dkim,
    /// Mail that aliases forward to other domains.
    pub forwarding: Forwarding,
    /// Protection shared by every protocol: brute-force bans, rates.
    pub protect: Protect,
    /// Checks of clients and envelopes on the MX.
    pub checks: Checks,
    pub greylist: Greylist,
    pub spam: Spam,
    pub antivirus: Antivirus,
    pub milter: Milter,
    pub store: StoreOptions,
}

/// `[auth]`: email authentication of mail received on the MX (`smtp` role).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Check SPF (RFC 7208), DKIM (RFC 6376), DMARC (RFC 7489), ARC (RFC 8617) and iprev on
    /// every message received on the MX, and add one Authentication-Results field (RFC 8601).
    pub enabled: bool,
    /// SPF `fail` for the sender: `"reject"` (550 5.7.23) or `"tag"` (only recorded in
    /// Authentication-Results; DMARC still applies).
    pub spf_fail: String,
    /// Apply the sender domain's DMARC policy: `p=reject` refused with 550 5.7.26,
    /// `p=quarantine` filed into Junk.
    pub dmarc_enforce: bool,
    /// Verify ARC chains (RFC 8617) and report them.
    pub arc: bool,
    /// Report iprev (forward-confirmed reverse DNS of the client).
    pub iprev: bool,
    /// A DNS failure (temperror) for SPF, or for an enforced DMARC, refuses temporarily (451)
    /// instead of accepting the message tagged.
    pub defer_on_temperror: bool,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            enabled: true,
            spf_fail: "tag".into(),
            dmarc_enforce: true,
            arc: true,
            iprev: true,
            defer_on_temperror: false,
        }
    }
}

/// `[protect]`: bans of addresses that fail to log in, shared by every protocol.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protect {
    /// Failed logins from one address (an IPv6 /64) within `ban_window_minutes` that ban it;
    /// 0: never.
    pub ban_after: usize,
    /// Failed logins for one account within `ban_window_minutes`, from any address, past
    /// which each further failure for it bans its address at once; 0: not counted.
    pub ban_account_after: usize,
    pub ban_window_minutes: u64,
    /// The first ban's length; each further ban within a day doubles it.
    pub ban_minutes: u64,
    /// The longest ban.
    pub ban_max_hours: u64,
    /// Addresses and networks never banned nor limited (`"192.0.2.0/24"`, `"2001:db8::1"`).
    pub allow: Vec<String>,
    /// New connections one address may open per minute, every role together; 0: no limit.
    pub connections_per_minute: u32,
    /// Messages and recipients one client address may send per minute (SMTP roles); 0: no
    /// limit. Beyond: `450 4.7.1` at RCPT.
    pub messages_per_minute: u32,
    pub recipients_per_minute: u32,
    /// The same per authenticated account, wherever it connects from.
    pub account_messages_per_minute: u32,
    pub account_recipients_per_minute: u32,
    /// Messages with one envelope sender domain per minute, from anywhere; 0: no limit.
    pub sender_domain_messages_per_minute: u32,
}

impl Default for Protect {
    fn default() -> Self {
        Protect {
            ban_after: 10,
            ban_account_after: 30,
            ban_window_minutes: 10,
            ban_minutes: 15,
            ban_max_hours: 24,
            allow: vec!["127.0.0.0/8".into(), "::1".into()],
            connections_per_minute: 0,
            messages_per_minute: 0,
            recipients_per_minute: 0,
            account_messages_per_minute: 0,
            account_recipients_per_minute: 0,
            sender_domain_messages_per_minute: 0,
        }
    }
}

/// `[forwarding]`: mail that aliases send on to addresses of other domains.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarding {
    /// Rewrite the envelope sender of forwarded mail with SRS (`SRS0=...@alias-domain`), so the
    /// destination's SPF check sees this server, and bounces come back here to be returned.
    pub srs: bool,
    /// How many days a rewritten address is accepted back (bounces arriving later are refused).
    pub srs_max_age_days: u16,
}

impl Default for Forwarding {
    fn default() -> Self {
        Forwarding {
            srs: true,
            srs_max_age_days: 21,
        }
    }
}

/// `[dkim]`: signing of mail sent by local domains (submission), keys from `facteur dkim`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    /// Sign mail whose From: domain has active keys (RSA and Ed25519 side by side).
    pub sign: bool,
    /// After a rotation, a retired key's record should stay in DNS this many days (mail in
    /// flight still verifies); `facteur dkim show` says when it can go.
    pub retire_days: u32,
    /// Minutes between looks, by the server, at whether the DNS records of keys waiting from a
    /// rotation (`next`) are published; when they are, signing switches to them.
    pub check_minutes: u64,
}

impl Default for Dkim {
    fn default() -> Self {
        Dkim {
            sign: true,
            retire_days: 7,
            check_minutes: 60,
        }
    }
}

/// `[dns]`: the resolver outbound delivery asks (MX, A/AAAA, TXT).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// Recursive name servers to ask, `"ip:port"` (`"ip"` alone means port 53), in order.
    /// Empty: those of `/etc/resolv.conf`.
    #[serde(deserialize_with = "nameservers")]
    pub nameservers: Vec<SocketAddr>,
    /// Seconds to wait for one answer before asking again or giving up.
    pub timeout_secs: u64,
    /// Tries per name server before a lookup fails temporarily.
    pub attempts: u32,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            nameservers: Vec::new(),
            timeout_secs: 5,
            attempts: 2,
        }
    }
}

/// `["ip:port", "ip", ...]`: a bare address means the DNS port, 53 (RFC 1035 §4.2).
fn nameservers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|raw| {
            raw.parse::<SocketAddr>()
                .or_else(|_| raw.parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{raw}` is not an address like \"127.0.0.1:53\", \"[::1]:53\" or \"127.0.0.1\""
                    ))
                })
        })
        .collect()
}

/// Outbound delivery: how queued mail leaves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Waits between attempts, in seconds; the last one repeats (Postfix-like: minutes at
    /// first, then hours).
    pub retry_secs: Vec<u64>,
    /// Give up and bounce after this many hours (Postfix `maximal_queue_lifetime`: 5 days).
    pub max_age_hours: u64,
    /// Send a delay notice to the sender after this many hours (RFC 3464 `delayed`; 0: never).
    pub delay_warning_hours: u64,
    /// Messages being delivered at once.
    pub max_parallel: usize,
    /// Deliveries to one destination domain at once (Postfix
    /// `default_destination_concurrency_limit`).
    pub per_destination: usize,
    /// Messages per minute to one destination domain; 0: no limit. Over it, messages wait for
    /// the next minute (for providers that throttle senders, e.g. 4.7.0 "too many messages").
    pub per_destination_rate: u32,
    /// Seconds between looks at the queue when nothing wakes it.
    pub scan_secs: u64,
    /// The port of MX hosts (Postfix `smtp_tcp_port`): 25; another only for tests and
    /// private networks.
    pub smtp_port: u16,
    /// Honour the MTA-STS policies (RFC 8461) recipient domains publish: only their listed MX
    /// hosts, over verified TLS.
    pub mta_sts: bool,
    /// DANE (RFC 7672): when the resolver vouches (AD bit) for an MX host's addresses and its
    /// TLSA records, TLS is required and the certificate must match them.
    pub dane: bool,
    /// The local address outbound connections leave from (Postfix `smtp_bind_address`):
    /// the one SPF records and reverse DNS name. Absent: the system's choice.
    pub source_address: Option<std::net::IpAddr>,
    /// Send everything through this relay (for connections whose port 25 is blocked).
    pub smarthost: Option<Smarthost>,
    /// Per destination domain, a fixed `host:port` instead of the MX lookup (Postfix
    /// `transport_maps` with `smtp:[host]:port`).
    pub transports: std::collections::BTreeMap<String, String>,
}

/// A relay all outbound mail goes through.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Smarthost {
    /// `host:port`, e.g. `smtp.sendgrid.net:587`.
    pub host: String,
    /// `starttls` (587) or `implicit` (465); the certificate is always verified.
    #[serde(default = "default_smarthost_tls")]
    pub tls: String,
    /// Account at the relay; empty: no AUTH.
    #[serde(default)]
    pub username: String,
    /// File holding the password (one line), readable by the service user only.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Extra root certificate (PEM) to trust for the relay, e.g. a private relay's own CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_smarthost_tls() -> String {
    "starttls".into()
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            retry_secs: vec![300, 900, 1800, 3600, 7200, 14400],
            max_age_hours: 120,
            delay_warning_hours: 4,
            max_parallel: 32,
            per_destination: 20,
            per_destination_rate: 0,
            scan_secs: 30,
            smtp_port: 25,
            mta_sts: true,
            dane: true,
            source_address: None,
            smarthost: None,
            transports: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BindFailure {
    Exit,
    Continue,
}

/// `role = ["ip:port", ...]`; an empty list disables the role.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// The MX (RFC 5321): receives mail for local domains, never relays.
    pub smtp: Vec<ListenAddr>,
    /// LMTP (RFC 2033), for an MTA in front of facteur. Keep it on loopback.
    pub lmtp: Vec<ListenAddr>,
    /// POP3 (RFC 1939) with STLS; no login before TLS unless `pop3.plaintext_auth`.
    pub pop3: Vec<ListenAddr>,
    /// POP3 over implicit TLS (RFC 8314).
    pub pop3s: Vec<ListenAddr>,
    /// IMAP (RFC 9051, RFC 3501) with STARTTLS; no login before TLS unless `imap.plaintext_auth`.
    pub imap: Vec<ListenAddr>,
    /// IMAP over implicit TLS (RFC 8314).
    pub imaps: Vec<ListenAddr>,
    /// Message submission (RFC 6409): STARTTLS, then AUTH; authenticated users send anywhere.
    pub submission: Vec<ListenAddr>,
    /// Message submission over implicit TLS (RFC 8314 §3.3).
    pub submissions: Vec<ListenAddr>,
    /// HTTP: mail client autoconfiguration (Thunderbird autoconfig, Outlook Autodiscover) and
    /// ACME HTTP-01 answers.
    pub http: Vec<ListenAddr>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM file with the default certificate chain, leaf first (served when no SNI name
    /// matches another certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM file with the default certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Seconds between two checks of the certificate files' size and modification time; a
    /// change reloads them. 0: only SIGHUP reloads.
    #[serde(default = "default_reload_check_secs")]
    pub reload_check_secs: u64,
    /// More certificates, chosen by the name the client asks for (SNI).
    pub certificates: Vec<TlsCertificate>,
}

fn default_reload_check_secs() -> u64 {
    60
}

/// `[[tls.certificates]]`: one more certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificate {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key.
    pub key: PathBuf,
    /// Names (SNI) it is served for; `*.example.com` matches one label. Empty: the names in
    /// the certificate (subjectAltName).
    #[serde(default)]
    pub hostnames: Vec<String>,
}

/// `[acme]`: certificates from an ACME CA (RFC 8555), renewed before they expire.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Acme {
    /// The CA's directory URL.
    pub directory: String,
    /// Contact e-mail addresses given to the CA (expiry notices).
    pub contact: Vec<String>,
    /// Names on the certificate. Empty: `[hostname]`.
    pub hostnames: Vec<String>,
    /// Renew when fewer days than this remain.
    pub renew_before_days: u32,
    /// PEM file of the root CA the ACME server's HTTPS certificate is checked against, instead
    /// of the system's roots (a test CA such as pebble).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// How the CA checks that this server answers for the names.
    pub challenge: AcmeChallenge,
    /// Where TLS-ALPN-01 validation connects (RFC 8737 §3: port 443); only with
    /// `challenge = "tls-alpn-01"`.
    pub tls_alpn_listen: Vec<ListenAddr>,
}

/// The ACME challenge type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum AcmeChallenge {
    /// RFC 8555 §8.3: the CA fetches `http://NAME/.well-known/acme-challenge/TOKEN` on port
    /// 80, answered by the `http` role.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737: the CA opens TLS to NAME:443 offering ALPN `acme-tls/1`.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for Acme {
    fn default() -> Self {
        Acme {
            directory: LETS_ENCRYPT.into(),
            contact: Vec::new(),
            hostnames: Vec::new(),
            renew_before_days: 30,
            ca_file: None,
            challenge: AcmeChallenge::Http01,
            tls_alpn_listen: listen(&["[::]:443"]),
        }
    }
}

/// The SMTP and LMTP sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Largest message accepted, in bytes (advertised with SIZE, RFC 1870).
    pub max_message_size: u64,
    /// Recipients per message; more get `452 4.5.3` (RFC 5321 §4.5.3.1.8 asks for at least 100).
    pub max_recipients: usize,
    /// Longest command line in bytes, CRLF included. RFC 5321 §4.5.3.1.4 sets 512 and lets
    /// extensions raise it; the default leaves room for DSN and SIZE parameters.
    pub max_line_length: usize,
    /// Seconds to wait for the next command or the next piece of a message (RFC 5321 §4.5.3.2.7:
    /// at least 5 minutes).
    pub timeout_secs: u64,
    /// Client errors tolerated in one session before it is closed with `421 4.7.0`.
    pub max_errors: u32,
    /// Simultaneous connections per listener role.
    pub max_connections: usize,
    /// Simultaneous connections from one address, per role (Postfix's
    /// `smtpd_client_connection_count_limit`); `protect.allow` is exempt; 0: no limit.
    pub max_connections_per_ip: usize,
}

/// The POP3 sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3 {
    /// Allow USER/PASS and AUTH PLAIN without TLS. Off: passwords never travel in clear.
    pub plaintext_auth: bool,
    /// Purge policy (RFC 2449 EXPIRE): absent keeps mail until the client deletes it; 0 deletes
    /// what a session retrieved when it quits; N deletes retrieved mail older than N days.
    pub expire_days: Option<u32>,
    /// Least seconds between two logins of one account (RFC 2449 LOGIN-DELAY); absent: none.
    pub login_delay_secs: Option<u32>,
    /// Inactivity autologout in seconds (RFC 1939 §3: at least 10 minutes).
    pub timeout_secs: u64,
    /// Longest command line in bytes.
    pub max_line_length: usize,
    /// Simultaneous connections for the POP3 roles together.
    pub max_connections: usize,
    /// Simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Pause after a failed login, in milliseconds.
    pub auth_failure_delay_ms: u64,
}

/// The IMAP sessions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Imap {
    /// Allow LOGIN and AUTHENTICATE without TLS. Off: passwords never travel in clear.
    pub plaintext_auth: bool,
    /// Inactivity autologout in seconds (RFC 9051 §5.4: at least 30 minutes).
    pub timeout_secs: u64,
    /// Longest command line in bytes (literals apart).
    pub max_line_length: usize,
    /// Largest message APPEND accepts, in bytes (announced as APPENDLIMIT, RFC 7889).
    pub max_append_size: u64,
    /// Simultaneous connections for the IMAP roles together.
    pub max_connections: usize,
    /// Simultaneous connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Simultaneous sessions of one account from one IP address (Dovecot's
    /// mail_max_userip_connections).
    pub max_connections_per_user_ip: usize,
    /// Pause after a failed login, in milliseconds.
    pub auth_failure_delay_ms: u64,
}

/// The submission roles; their sessions otherwise follow `[smtp]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Submission {
    /// Offer AUTH without TLS. Off: passwords never travel in clear.
    pub plaintext_auth: bool,
    /// Pause before answering a failed AUTH, in milliseconds.
    pub auth_failure_delay_ms: u64,
    /// Failed AUTH exchanges before the session is closed with `421 4.7.0`.
    pub max_auth_failures: u32,
    /// Name the client's address and EHLO name in the Received header. Off: the header says
    /// only which server received the message, so a user's home or office address stays private.
    pub reveal_client: bool,
    /// Refuse (`553 5.7.1`) a MAIL FROM or From: address the account does not own: its own
    /// address, its subaddresses and the aliases that deliver to it.
    pub check_sender: bool,
    /// Largest header section kept in memory to check From: and add Message-ID and Date.
    pub max_header_size: usize,
}

/// What the `http` role tells mail clients (Thunderbird autoconfig, Outlook Autodiscover).
/// Every field has a default from `hostname` and the `[listen]` ports.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Autoconfig {
    /// The host name clients connect to. Empty: `hostname`.
    pub server: String,
    /// The name shown in the client. Empty: the domain of the address.
    pub display_name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryOptions {
    /// Separator of subaddresses: `user+tag@domain` reaches `user`. Empty disables them.
    pub subaddress_separator: String,
    /// Quota of new accounts in bytes; 0 means none.
    pub default_quota: u64,
    /// Seconds a successful login is remembered, so polling clients skip the Argon2id cost
    /// (only the HMAC of the password under a per-process key is kept); 0 disables.
    pub auth_cache_secs: u64,
    /// Offer SASL CRAM-MD5 (RFC 2195). It needs password-equivalent secrets on disk, so it is
    /// off by default (docs/decisions/0013).
    pub cram_md5: bool,
}

/// `[oauth]`: JWT access tokens (RFC 7519) of one issuer, verified with its JWKS (RFC 7517).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth {
    /// The required `iss` claim.
    pub issuer: String,
    /// Required in the `aud` claim (a string or an array in the token).
    pub audience: String,
    /// JWKS file with the issuer's public keys, read at start.
    pub jwks_file: Option<PathBuf>,
    /// Where the issuer publishes its JWKS: fetched at start and every hour (https, or http to
    /// a loopback address).
    pub jwks_url: Option<String>,
    /// The claim holding the account's address.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// The scope named in the error challenge of a refused token (RFC 7628 §3.2.2).
    #[serde(default = "default_scope")]
    pub scope: String,
}

fn default_username_claim() -> String {
    "email".into()
}

fn default_leeway_secs() -> u64 {
    60
}

fn default_scope() -> String {
    "openid email".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreOptions {
    /// Messages up to this size are kept inside the database, larger ones as files in `blobs/`.
    pub inline_blob_max: u64,
    /// Most deliveries committed together in one transaction and one fsync.
    pub group_commit_max: usize,
}

/// A listen address; `[::]:25` falls back to `0.0.0.0:25` on hosts without IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map(ListenAddr).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{raw}` is not an address and port like \"127.0.0.1:25\" or \"[::]:25\""
            ))
        })
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn listen(raw: &[&str]) -> Vec<ListenAddr> {
    raw.iter()
        .map(|a| ListenAddr(a.parse().expect("built-in listen addresses parse")))
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: system_hostname(),
            data_dir: PathBuf::from("./facteur-data"),
            run_as: String::new(),
            bind_failure: BindFailure::Exit,
            shutdown_grace_secs: 30,
            listen: Listen::default(),
            tls: Tls {
                reload_check_secs: default_reload_check_secs(),
                ..Tls::default()
            },
            acme: None,
            smtp: Smtp::default(),
            pop3: Pop3::default(),
            imap: Imap::default(),
            submission: Submission::default(),
            autoconfig: Autoconfig::default(),
            directory: DirectoryOptions::default(),
            oauth: None,
            queue: Queue::default(),
            dns: Dns::default(),
            auth: Auth::default(),
            dkim: Dkim::default(),
            forwarding: Forwarding::default(),
            protect: Protect::default(),
            checks: Checks::default(),
            greylist: Greylist::default(),
            spam: Spam::default(),
            antivirus: Antivirus::default(),
            milter: Milter::default(),
            store: StoreOptions::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            smtp: listen(&["[::]:25"]),
            lmtp: listen(&["127.0.0.1:24"]),
            pop3: listen(&["[::]:110"]),
            pop3s: listen(&["[::]:995"]),
            imap: listen(&["[::]:143"]),
            imaps: listen(&["[::]:993"]),
            submission: listen(&["[::]:587"]),
            submissions: listen(&["[::]:465"]),
            http: listen(&["127.0.0.1:8080"]),
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 2048,
            timeout_secs: 300,
            max_errors: 20,
            max_connections: 1000,
            max_connections_per_ip: 50,
        }
    }
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3 {
            plaintext_auth: false,
            expire_days: None,
            login_delay_secs: None,
            timeout_secs: 600,
            max_line_length: 1024,
            max_connections: 1000,
            max_connections_per_ip: 20,
            auth_failure_delay_ms: 2000,
        }
    }
}

impl Default for Imap {
    fn default() -> Self {
        Imap {
            plaintext_auth: false,
            timeout_secs: 1800,
            max_line_length: 64 * 1024,
            max_append_size: 50 * 1024 * 1024,
            max_connections: 5000,
            max_connections_per_ip: 50,
            max_connections_per_user_ip: 20,
            auth_failure_delay_ms: 2000,
        }
    }
}

impl Default for Submission {
    fn default() -> Self {
        Submission {
            plaintext_auth: false,
            auth_failure_delay_ms: 2000,
            max_auth_failures: 3,
            reveal_client: false,
            check_sender: true,
            max_header_size: 1024 * 1024,
        }
    }
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        DirectoryOptions {
            subaddress_separator: "+".into(),
            default_quota: 0,
            auth_cache_secs: 300,
            cram_md5: false,
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            inline_blob_max: 256 * 1024,
            group_commit_max: 256,
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses configuration text; the error names the line, the column and the key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if facteur_model::Domain::parse(&self.hostname).is_none() {
            return Err(format!(
                "key `hostname`: `{}` is not a host name",
                self.hostname
            ));
        }
        if self.smtp.max_line_length < 512 {
            return Err(
                "key `smtp.max_line_length`: RFC 5321 §4.5.3.1.4 needs at least 512".into(),
            );
        }
        if self.smtp.max_recipients < 1 {
            return Err("key `smtp.max_recipients`: must be at least 1".into());
        }
        if self.pop3.timeout_secs < 600 {
            return Err("key `pop3.timeout_secs`: RFC 1939 §3 needs at least 600".into());
        }
        if self.pop3.max_line_length < 255 {
            return Err("key `pop3.max_line_length`: RFC 2449 §4 allows 255-octet commands".into());
        }
        if let Some(oauth) = &self.oauth {
            if oauth.issuer.is_empty() {
                return Err("key `oauth.issuer`: must not be empty".into());
            }
            if oauth.audience.is_empty() {
                return Err("key `oauth.audience`: must not be empty".into());
            }
            if oauth.jwks_file.is_none() && oauth.jwks_url.is_none() {
                return Err(
                    "section `oauth`: set `jwks_file` or `jwks_url`, where the issuer's keys are"
                        .into(),
                );
            }
        }
        self.validate_tls()?;
        if self.dns.timeout_secs < 1 {
            return Err("key `dns.timeout_secs`: must be at least 1".into());
        }
        if self.dns.attempts < 1 {
            return Err("key `dns.attempts`: must be at least 1".into());
        }
        self.validate_filters()?;
        if self.store.group_commit_max < 1 {
            return Err("key `store.group_commit_max`: must be at least 1".into());
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), String> {
        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => return Err("key `tls.key`: needed with `tls.cert`".into()),
            (None, Some(_)) => return Err("key `tls.cert`: needed with `tls.key`".into()),
            _ => {}
        }
        let name_ok =
            |n: &str| facteur_model::Domain::parse(n.strip_prefix("*.").unwrap_or(n)).is_some();
        for (i, c) in self.tls.certificates.iter().enumerate() {
            if let Some(bad) = c.hostnames.iter().find(|n| !name_ok(n)) {
                return Err(format!(
                    "key `tls.certificates[{i}].hostnames`: `{bad}` is not a host name"
                ));
            }
        }
        if let Some(acme) = &self.acme {
            // HTTP-01 and TLS-ALPN-01 cannot prove a wildcard (RFC 8555 §7.1.3, RFC 8737 §3).
            if let Some(bad) = acme
                .hostnames
                .iter()
                .find(|n| facteur_model::Domain::parse(n).is_none() || n.contains('*'))
            {
                return Err(format!(
                    "key `acme.hostnames`: `{bad}` is not a host name (no wildcards with http-01 or tls-alpn-01)"
                ));
            }
            if acme.renew_before_days < 1 {
                return Err("key `acme.renew_before_days`: must be at least 1".into());
            }
            if !acme.directory.starts_with("https://") {
                return Err("key `acme.directory`: must be an https:// URL".into());
            }
            if let Some(bad) = acme.contact.iter().find(|c| !c.contains('@')) {
                return Err(format!(
                    "key `acme.contact`: `{bad}` is not an e-mail address"
                ));
            }
        }
        Ok(())
    }

    /// The names the ACME certificate is for: `acme.hostnames`, else `[hostname]`.
    pub fn acme_hostnames(&self) -> Vec<String> {
        match &self.acme {
            Some(a) if !a.hostnames.is_empty() => a.hostnames.clone(),
            _ => vec![self.hostname.clone()],
        }
    }

    /// The effective configuration as TOML, defaults filled in.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configuration serializes")
    }
}

/// Turns a TOML error into one line: `line L, column C: key `K`: message`.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else { return message };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    match key_at(text, line) {
        Some(key)
            if !message.contains(&format!("`{}`", key.rsplit('.').next().unwrap_or(&key))) =>
        {
            format!("line {line}, column {column}: key `{key}`: {message}")
        }
        _ => format!("line {line}, column {column}: {message}"),
    }
}

/// The dotted key assigned on `line` (1-based): `section.key`, from the nearest `[section]`
/// header above. None when the line is not a `key = value` line.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line - 1)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = lines[..line - 1]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|h| h.strip_suffix(']')))
        .map(|h| h.trim().to_string());
    Some(match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_string(),
    })
}

/// The machine's host name, as the kernel knows it.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| facteur_model::Domain::parse(s).is_some())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./facteur-data"));
        assert_eq!(c.listen.smtp[0].to_string(), "[::]:25");
        assert_eq!(c.smtp.max_recipients, 1000);
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = Config::parse("hostname = \"mx.example.com\"\n[smtp]\nmax_recipient = 3\n")
            .unwrap_err();
        assert!(err.starts_with("line 3, column 1"), "{err}");
        assert!(err.contains("max_recipient"), "{err}");
    }

    #[test]
    fn bad_listen_address_names_line_and_key() {
        let err = Config::parse("[listen]\nsmtp = [\"localhost\"]\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(
            err.contains("localhost") && err.contains("`listen.smtp`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = Config::parse("shutdown_grace_secs = \"ten\"\n").unwrap_err();
        assert!(err.contains("key `shutdown_grace_secs`"), "{err}");
        let err = Config::parse("hostname = \"mx.example.com\"\n\n[smtp]\nmax_recipients = -1\n")
            .unwrap_err();
        assert!(
            err.starts_with("line 4") && err.contains("key `smtp.max_recipients`"),
            "{err}"
        );
    }

    #[test]
    fn every_key_is_documented() {
        let doc = include_str!("../../../docs/config.md");
        let config = Config {
            tls: Tls {
                cert: Some("c".into()),
                key: Some("k".into()),
                reload_check_secs: 60,
                certificates: vec![TlsCertificate {
                    cert: "c".into(),
                    key: "k".into(),
                    hostnames: vec!["a.example.com".into()],
                }],
            },
            acme: Some(Acme {
                ca_file: Some("ca.pem".into()),
                ..Acme::default()
            }),
            pop3: Pop3 {
                expire_days: Some(1),
                login_delay_secs: Some(1),
                ..Pop3::default()
            },
            oauth: Some(OAuth {
                issuer: "i".into(),
                audience: "a".into(),
                jwks_file: Some("f".into()),
                jwks_url: Some("u".into()),
                username_claim: default_username_claim(),
                leeway_secs: 60,
                scope: default_scope(),
            }),
            ..Config::default()
        };
        let value: toml::Value = toml::from_str(&config.to_toml()).unwrap();
        let mut missing = Vec::new();
        for (key, v) in value.as_table().unwrap() {
            let keys: Vec<String> = match v.as_table() {
                Some(t) => t.keys().map(|k| format!("`{k}`")).collect(),
                None => vec![format!("`{key}`")],
            };
            missing.extend(keys.into_iter().filter(|k| !doc.contains(k.as_str())));
        }
        assert!(missing.is_empty(), "docs/config.md lacks {missing:?}");
    }

    #[test]
    fn oauth_section_needs_issuer_audience_and_keys() {
        assert!(Config::parse("").unwrap().oauth.is_none());
        let c = Config::parse(
            "hostname = \"mx.example.com\"\n[oauth]\nissuer = \"https://id.example.com\"\naudience = \"mail\"\njwks_file = \"/etc/facteur/jwks.json\"\n",
        )
        .unwrap();
        let oauth = c.oauth.unwrap();
        assert_eq!(oauth.username_claim, "email");
        assert_eq!(oauth.leeway_secs, 60);
        assert!(!c.directory.cram_md5);
        let err =
            Config::parse("hostname = \"mx.example.com\"\n[oauth]\nissuer = \"i\"\n").unwrap_err();
        assert!(err.contains("audience"), "{err}");
        let err = Config::parse(
            "hostname = \"mx.example.com\"\n[oauth]\nissuer = \"i\"\naudience = \"a\"\n",
        )
        .unwrap_err();
        assert!(err.contains("jwks_file"), "{err}");
    }

    #[test]
    fn tls_and_acme_sections() {
        let c = Config::parse(
            "hostname = \"mx.example.com\"\n[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\
             [[tls.certificates]]\ncert = \"/b.pem\"\nkey = \"/bk.pem\"\nhostnames = [\"*.example.org\"]\n\
             [acme]\ncontact = [\"postmaster@example.com\"]\nchallenge = \"tls-alpn-01\"\n",
        )
        .unwrap();
        assert_eq!(c.tls.cert.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(c.tls.reload_check_secs, 60);
        assert_eq!(c.tls.certificates[0].hostnames, ["*.example.org"]);
        let acme = c.acme.as_ref().unwrap();
        assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(acme.renew_before_days, 30);
        assert_eq!(acme.directory, LETS_ENCRYPT);
        assert_eq!(c.acme_hostnames(), ["mx.example.com"]);
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.tls.certificates.len(), 1);
        assert_eq!(Config::parse("").unwrap().tls.reload_check_secs, 60);
        let err = Config::parse("[tls]\ncert = \"/c.pem\"\n").unwrap_err();
        assert!(err.contains("`tls.key`"), "{err}");
        let err = Config::parse("[acme]\nhostnames = [\"*.example.com\"]\n").unwrap_err();
        assert!(err.contains("`acme.hostnames`"), "{err}");
        let err = Config::parse("[acme]\nchallenge = \"dns-01\"\n").unwrap_err();
        assert!(err.contains("dns-01"), "{err}");
    }

    #[test]
    fn dns_section() {
        let c = Config::parse("").unwrap();
        assert!(c.dns.nameservers.is_empty());
        assert_eq!((c.dns.timeout_secs, c.dns.attempts), (5, 2));
        let c = Config::parse(
            "[dns]\nnameservers = [\"127.0.0.1:5353\", \"[::1]:53\", \"192.0.2.1\"]\ntimeout_secs = 1\nattempts = 3\n",
        )
        .unwrap();
        let ns: Vec<String> = c.dns.nameservers.iter().map(|a| a.to_string()).collect();
        assert_eq!(ns, ["127.0.0.1:5353", "[::1]:53", "192.0.2.1:53"]);
        assert_eq!((c.dns.timeout_secs, c.dns.attempts), (1, 3));
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.dns.nameservers, c.dns.nameservers);
        let err = Config::parse("[dns]\nnameservers = [\"ns1.example.com\"]\n").unwrap_err();
        assert!(
            err.starts_with("line 2") && err.contains("ns1.example.com"),
            "{err}"
        );
        let err = Config::parse("[dns]\ntimeout_secs = 0\n").unwrap_err();
        assert!(err.contains("`dns.timeout_secs`"), "{err}");
        let err = Config::parse("[dns]\nattempts = 0\n").unwrap_err();
        assert!(err.contains("`dns.attempts`"), "{err}");
    }

    #[test]
    fn effective_config_round_trips() {
        let c = Config::parse("hostname = \"mx.example.com\"\n[listen]\nlmtp = []\n").unwrap();
        let again = Config::parse(&c.to_toml()).unwrap();
        assert_eq!(again.hostname, "mx.example.com");
        assert!(again.listen.lmtp.is_empty());
    }
}
