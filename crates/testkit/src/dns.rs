//! An in-process DNS server for tests, so no test ever asks the internet.
//!
//! It answers from a table the test fills (`add_a`, `add_mx`, ...), on one loopback port over
//! UDP and TCP (RFC 1035 §4.2.1, §4.2.2; RFC 7766), as an authoritative server with RA set, so
//! a stub resolver pointed at it takes it for its recursive resolver. Messages are decoded and
//! encoded with hickory-proto (the resolver's own codec; decision 0017).
//!
//! Rules: an unknown name is NXDOMAIN (RFC 1035 §4.1.1 RCODE 3); a known name without the asked
//! type is NOERROR with no answer (NODATA, RFC 2308 §2.2); `fail(name, rcode)` answers every
//! question about the name with that RCODE (SERVFAIL to simulate a temporary failure). Names
//! are compared without case (RFC 4343) and without the trailing dot. No CNAME, wildcard or
//! delegation, no SOA in negative answers.
//!
//! DNSSEC is played, not done: `sign(suffix)` marks the names at and below `suffix` as if a
//! validating resolver had checked them, and their answers (NXDOMAIN and NODATA included) carry
//! the AD bit when the question asked for it with AD or DO (RFC 6840 §5.7-5.8). No RRSIG is
//! ever sent: a client that trusts its resolver's AD bit, as facteur does, cannot tell.
//!
//! The server runs on its own thread with a current-thread runtime: `start` is a plain
//! function, usable from sync tests and from any async test (also `#[tokio::test]`'s
//! single-threaded runtime, whose thread the test may block). Dropping the server stops it.

pub use hickory_proto::op::ResponseCode;

use hickory_proto::op::{Edns, Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// TTL of every answer: short, tests change the table between lookups.
const TTL: u32 = 1;
/// EDNS(0) payload the server announces (RFC 6891 §6.2.5; the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

#[derive(Default)]
struct Zone {
    names: HashMap<String, Node>,
    /// Suffixes whose answers are "authenticated" (see the module documentation).
    signed: Vec<String>,
}

impl Zone {
    fn is_signed(&self, owner: &str) -> bool {
        self.signed
            .iter()
            .any(|s| owner == s || owner.ends_with(&format!(".{s}")))
    }
}

#[derive(Default)]
struct Node {
    records: Vec<RData>,
    fail: Option<ResponseCode>,
}

struct Shared {
    zone: Mutex<Zone>,
    queries: AtomicUsize,
}

/// A DNS server on loopback answering from a table; see the module documentation.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on `addr` (port 0: a free port, the same for both) and starts
    /// answering. Panics when it cannot bind: this is test support.
    pub fn start(addr: SocketAddr) -> DnsServer {
        let (udp, tcp) = bind(addr);
        let addr = udp.local_addr().expect("UDP socket address");
        let shared = Arc::new(Shared {
            zone: Mutex::new(Zone::default()),
            queries: AtomicUsize::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("dns-{addr}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("DNS test server runtime");
                runtime.block_on(async move {
                    let udp = UdpSocket::from_std(udp).expect("UDP socket into tokio");
                    let tcp = TcpListener::from_std(tcp).expect("TCP listener into tokio");
                    tokio::select! {
                        _ = stopped => {}
                        _ = serve_udp(udp, serving.clone()) => {}
                        _ = serve_tcp(tcp, serving) => {}
                    }
                });
            })
            .expect("spawn the DNS test server thread");
        DnsServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The address to put in `dns.nameservers`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Questions answered so far, UDP and TCP together.
    pub fn queries(&self) -> usize {
        self.shared.queries.load(Ordering::SeqCst)
    }

    pub fn add_a(&self, name: &str, ip: Ipv4Addr) -> &Self {
        self.add(name, RData::A(A(ip)))
    }

    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr) -> &Self {
        self.add(name, RData::AAAA(AAAA(ip)))
    }

    /// An MX record (RFC 1035 §3.3.9) at `domain` naming `exchange`.
    pub fn add_mx(&self, domain: &str, preference: u16, exchange: &str) -> &Self {
        self.add(domain, RData::MX(MX::new(preference, name(exchange))))
    }

    /// The null MX `0 .` (RFC 7505 §3).
    pub fn add_null_mx(&self, domain: &str) -> &Self {
        self.add(domain, RData::MX(MX::new(0, Name::root())))
    }

    /// A PTR record (RFC 1035 §3.3.12) at `owner` naming `target`, for reverse lookups: the
    /// owner is the address's name under in-addr.arpa or ip6.arpa (RFC 1035 §3.5, RFC 3596 §2.5),
    /// e.g. `1.2.0.192.in-addr.arpa` for 192.0.2.1.
    pub fn add_ptr(&self, owner: &str, target: &str) -> &Self {
        self.add(owner, RData::PTR(PTR(name(target))))
    }

    /// A TXT record holding `text`, cut into character-strings of at most 255 octets
    /// (RFC 1035 §3.3.14) as DNS tools do with long SPF or DKIM records.
    pub fn add_txt(&self, name: &str, text: &str) -> &Self {
        let mut chunks: Vec<&[u8]> = text.as_bytes().chunks(255).collect();
        if chunks.is_empty() {
            chunks.push(b"");
        }
        self.add(name, RData::TXT(TXT::from_bytes(chunks)))
    }

    /// A TXT record made of these character-strings, each at most 255 octets.
    pub fn add_txt_strings(&self, name: &str, strings: &[&str]) -> &Self {
        assert!(
            strings.iter().all(|s| s.len() <= 255),
            "a TXT character-string holds at most 255 octets"
        );
        self.add(
            name,
            RData::TXT(TXT::new(strings.iter().map(|s| s.to_string()).collect())),
        )
    }

    /// Every question about `name` gets `rcode` (e.g. `ResponseCode::ServFail`, `Refused`)
    /// until `remove(name)`. The name need not have records.
    pub fn fail(&self, name: &str, rcode: ResponseCode) -> &Self {
        self.zone().names.entry(key(name)).or_default().fail = Some(rcode);
        self
    }

    /// A TLSA record (RFC 6698 §2.1) at `name` (`_25._tcp.mx.example`).
    pub fn add_tlsa(
        &self,
        name: &str,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &[u8],
    ) -> &Self {
        self.add(
            name,
            RData::TLSA(TLSA::new(
                usage.into(),
                selector.into(),
                matching.into(),
                data.to_vec(),
            )),
        )
    }

    /// Answers about `suffix` and every name below it carry the AD bit from now on, as a
    /// validating resolver's answers about a signed zone.
    pub fn sign(&self, suffix: &str) -> &Self {
        self.zone().signed.push(key(suffix));
        self
    }

    /// Forgets `name`: its records and its failure; it is NXDOMAIN again.
    pub fn remove(&self, name: &str) -> &Self {
        self.zone().names.remove(&key(name));
        self
    }

    fn add(&self, owner: &str, data: RData) -> &Self {
        self.zone()
            .names
            .entry(key(owner))
            .or_default()
            .records
            .push(data);
        self
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, Zone> {
        self.shared.zone.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// UDP and TCP on one port. With port 0 the UDP port is chosen first; if TCP cannot have the
/// same one, another is tried.
fn bind(addr: SocketAddr) -> (std::net::UdpSocket, std::net::TcpListener) {
    let mut last = None;
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind(addr).expect("bind the DNS test server's UDP port");
        let port = udp.local_addr().expect("UDP socket address").port();
        match std::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => {
                udp.set_nonblocking(true).expect("nonblocking UDP");
                tcp.set_nonblocking(true).expect("nonblocking TCP");
                return (udp, tcp);
            }
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => panic!("bind the DNS test server's TCP port {addr}: {e}"),
        }
    }
    panic!("no port free for both UDP and TCP on {addr}: {last:?}");
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn name(s: &str) -> Name {
    let mut n = Name::from_utf8(s.trim_end_matches('.'))
        .unwrap_or_else(|e| panic!("`{s}` is not a domain name: {e}"));
    n.set_fqdn(true);
    n
}

async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = respond(&buf[..len], &shared, true) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_tcp_connection(stream, shared.clone()));
    }
}

/// RFC 1035 §4.2.2: each message preceded by its length in two octets; several per
/// connection (RFC 7766 §6.2.1).
async fn serve_tcp_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut request = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        let Some(reply) = respond(&request, &shared, false) else {
            continue;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = reply_len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The encoded reply to one request; None when it is not even a DNS header (dropped).
fn respond(request: &[u8], shared: &Shared, udp: bool) -> Option<Vec<u8>> {
    let request = match Message::from_vec(request) {
        Ok(m) => m,
        Err(_) if request.len() >= 2 => {
            // RFC 1035 §4.1.1: FORMERR, keeping the query's id.
            let id = u16::from_be_bytes([request[0], request[1]]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
                .to_vec()
                .ok();
        }
        Err(_) => return None,
    };
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    shared.queries.fetch_add(1, Ordering::SeqCst);
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.edns = Some(edns);
    }
    answer(&request, &mut reply, shared);
    let bytes = reply.to_vec().ok()?;
    // RFC 1035 §4.2.1, RFC 6891 §6.2.3: over UDP, larger than the client's buffer is
    // truncated (TC), and the client asks again over TCP.
    let limit = request
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().max(512)) as usize;
    if udp && bytes.len() > limit {
        return reply.truncate().to_vec().ok();
    }
    Some(bytes)
}

fn answer(request: &Message, reply: &mut Message, shared: &Shared) {
    if request.metadata.op_code != OpCode::Query {
        reply.metadata.response_code = ResponseCode::NotImp;
        return;
    }
    // RFC 9619: exactly one question.
    let [query] = request.queries.as_slice() else {
        reply.metadata.response_code = ResponseCode::FormErr;
        return;
    };
    let owner = key(&query.name.to_ascii());
    let zone = shared.zone.lock().unwrap_or_else(|p| p.into_inner());
    let asks_ad = request.metadata.authentic_data
        || request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    reply.metadata.authentic_data = asks_ad && zone.is_signed(&owner);
    let Some(node) = zone.names.get(&owner) else {
        reply.metadata.response_code = ResponseCode::NXDomain;
        return;
    };
    if let Some(rcode) = node.fail {
        reply.metadata.authentic_data = false;
        reply.metadata.response_code = rcode;
        return;
    }
    let wanted = query.query_type;
    for data in node
        .records
        .iter()
        .filter(|d| d.record_type() == wanted || wanted == hickory_proto::rr::RecordType::ANY)
    {
        reply.add_answer(Record::from_rdata(query.name.clone(), TTL, data.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use hickory_proto::rr::RecordType;

    fn ask(server: &DnsServer, owner: &str, rtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(name(owner), rtype));
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        socket.send_to(&q.to_vec().unwrap(), server.addr()).unwrap();
        let mut buf = [0u8; 4096];
        let len = socket.recv(&mut buf).unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(reply.metadata.id, q.metadata.id);
        reply
    }

    #[test]
    fn answers_from_the_table_in_a_sync_test() {
        let server = DnsServer::start("127.0.0.1:0".parse().unwrap());
        server
            .add_a("mx.example.com", Ipv4Addr::new(192, 0, 2, 1))
            .add_mx("Example.COM.", 10, "mx.example.com");
        let r = ask(&server, "example.com", RecordType::MX);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1);
        let r = ask(&server, "example.com", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let r = ask(&server, "nowhere.example.com", RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        server.fail("example.com", ResponseCode::ServFail);
        let r = ask(&server, "example.com", RecordType::MX);
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        server.remove("example.com");
        let r = ask(&server, "example.com", RecordType::MX);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(server.queries(), 5);
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let server = DnsServer::start("127.0.0.1:0".parse().unwrap());
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        socket.send_to(&[0xab, 0xcd, 0xff], server.addr()).unwrap();
        let mut buf = [0u8; 512];
        let len = socket.recv(&mut buf).unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(reply.metadata.id, 0xabcd);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn long_answers_are_truncated_over_udp_and_whole_over_tcp() {
        let server = DnsServer::start("127.0.0.1:0".parse().unwrap());
        for i in 0..40 {
            server.add_txt("big.example.com", &format!("{i:02}{}", "x".repeat(60)));
        }
        let r = ask(&server, "big.example.com", RecordType::TXT);
        assert!(r.metadata.truncation && r.answers.is_empty());

        let mut q = Message::query();
        q.add_query(Query::query(name("big.example.com"), RecordType::TXT));
        let bytes = q.to_vec().unwrap();
        let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
        use std::io::{Read, Write};
        tcp.write_all(&(bytes.len() as u16).to_be_bytes()).unwrap();
        tcp.write_all(&bytes).unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut body).unwrap();
        let reply = Message::from_vec(&body).unwrap();
        assert_eq!(reply.answers.len(), 40);
    }
}
