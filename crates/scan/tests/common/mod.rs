//! Scripted scanners for the tests: accept one connection, read one request in the
//! SPAMC or HTTP shape (header block, blank line, `Content-length` octets), then answer as told.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;

/// Longest any step of a fake server waits.
pub const WAIT: Duration = Duration::from_secs(10);
/// Largest request a fake server reads.
const MAX_REQUEST: usize = 8 * 1024 * 1024;

/// What a fake server received.
#[derive(Debug)]
pub struct Request {
    /// The header block, without the blank line.
    pub head: String,
    pub body: Vec<u8>,
    /// The client shut down its sending side after the body.
    pub half_closed: bool,
}

impl Request {
    /// The header lines after the request line.
    pub fn headers(&self) -> Vec<&str> {
        self.head.split("\r\n").skip(1).collect()
    }
}

/// How a fake server answers.
pub enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// Nothing, keeping the connection open.
    Silent,
    /// `head`, then filler until `total` octets are sent or the client goes.
    Flood { head: Vec<u8>, total: usize },
}

/// Reads one request, bounded in size and time.
pub async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Request {
    tokio::time::timeout(WAIT, async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut chunk).await.expect("read request");
            assert!(
                n > 0,
                "client closed before the end of its header block: {buf:?}"
            );
            buf.extend_from_slice(&chunk[..n]);
            assert!(buf.len() < MAX_REQUEST, "request too large");
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("UTF-8 header block");
        let length = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.trim().parse::<usize>().expect("content length"))
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "client closed before the end of its body");
            body.extend_from_slice(&chunk[..n]);
            assert!(body.len() <= MAX_REQUEST, "request too large");
        }
        assert_eq!(body.len(), length, "more octets than Content-length");
        let half_closed = matches!(
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut chunk)).await,
            Ok(Ok(0))
        );
        Request {
            head,
            body,
            half_closed,
        }
    })
    .await
    .expect("request within the wait")
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, reply: Reply) -> Request {
    let request = read_request(&mut stream).await;
    match reply {
        Reply::Bytes(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Silent => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Reply::Flood { head, total } => {
            let _ = stream.write_all(&head).await;
            let filler = vec![b'x'; 16 * 1024];
            let mut sent = head.len();
            while sent < total {
                if stream.write_all(&filler).await.is_err() {
                    break;
                }
                sent += filler.len();
            }
        }
    }
    request
}

/// A fake server on 127.0.0.1 answering one connection.
pub async fn serve_tcp(reply: Reply) -> (SocketAddr, JoinHandle<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("a connection within the wait")
            .expect("accept");
        answer(stream, reply).await
    });
    (addr, task)
}

/// A fake server on a unix socket at `path` answering one connection.
pub fn serve_unix(path: &Path, reply: Reply) -> JoinHandle<Request> {
    let listener = UnixListener::bind(path).expect("bind unix socket");
    tokio::spawn(async move {
        let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("a connection within the wait")
            .expect("accept");
        answer(stream, reply).await
    })
}

/// Waits for a fake server's task and returns what it received.
pub async fn received(task: JoinHandle<Request>) -> Request {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("fake server done within the wait")
        .expect("fake server task")
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("facteur-scan-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A local TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// True when the interop tests must run (CI), false to skip them with a notice.
pub fn interop_required() -> bool {
    std::env::var("FACTEUR_REQUIRE_INTEROP").as_deref() == Ok("1")
}

/// The binary if installed; otherwise skips (returns None) with a notice, or panics under
/// FACTEUR_REQUIRE_INTEROP=1.
pub fn interop_binary(path: &str, package: &str) -> Option<PathBuf> {
    let path = PathBuf::from(path);
    if path.exists() {
        return Some(path);
    }
    assert!(
        !interop_required(),
        "{} is not installed (apt package {package}) and FACTEUR_REQUIRE_INTEROP=1",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is not installed (apt package {package}); set FACTEUR_REQUIRE_INTEROP=1 to make this a failure",
        path.display()
    );
    None
}

/// A daemon started by a test, stopped on drop: SIGTERM to its own pid (so that it stops its
/// children), then SIGKILL if it has not exited within five seconds.
pub struct Daemon {
    pub child: std::process::Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Daemon {
    /// The daemon's output so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the daemon has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); its output:\n{}",
                self.name,
                self.log()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
