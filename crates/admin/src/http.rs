//! A small, strict HTTP/1.1 server (RFC 9112): one request per connection, the request head
//! bounded to 8 KiB, a body only with Content-Length and at most 64 KiB, 10 seconds for the
//! whole request. Enough for the documents this role serves; nothing else is accepted.

use crate::{Context, autoconfig};
use facteur_model::{Address, Domain};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub host: String,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    fn text(status: u16, body: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"))
    }
}

pub async fn handle(mut stream: TcpStream, peer: SocketAddr, ctx: &Context) {
    let request = tokio::time::timeout(TIMEOUT, read_request(&mut stream)).await;
    let (response, method, path) = match request {
        Ok(Ok(req)) => {
            let response = route(ctx, &req);
            (response, req.method, req.path)
        }
        Ok(Err(response)) => (response, "-".into(), "-".into()),
        Err(_) => (
            Response::text(408, "Request Timeout"),
            "-".into(),
            "-".into(),
        ),
    };
    tracing::info!(role = "http", remote = %peer, %method, path = %path.chars().take(200).collect::<String>(),
        status = response.status, "request");
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    let mut out = head.into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(response.body.as_bytes());
    }
    let _ = tokio::time::timeout(TIMEOUT, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

async fn read_request(stream: &mut TcpStream) -> Result<Request, Response> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(Response::text(431, "Request Header Fields Too Large"));
        }
        read_more(stream, &mut buf).await?;
    };
    let mut request = parse_head(&buf[..head_end])?;
    let length = request.body.len(); // parse_head stores the declared length as capacity hint
    request.body.clear();
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        read_more(stream, &mut body).await?;
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// Appends what the next read brings; the end of the stream before a complete request is a
/// bad request.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Response> {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        _ => Err(Response::text(400, "Bad Request")),
    }
}

/// Parses the request line and header fields (RFC 9112 §3 and §5). The body is left as a
/// zero-filled vector of the declared Content-Length for the caller to fill.
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, Response> {
    let bad = || Response::text(400, "Bad Request");
    let text = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().ok_or_else(bad)?.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(Response::text(505, "HTTP Version Not Supported"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut host = String::new();
    let mut length = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(bad)?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "host" => host = value.to_ascii_lowercase(),
            "content-length" => {
                length = value.parse().map_err(|_| bad())?;
                if length > MAX_BODY {
                    return Err(Response::text(413, "Content Too Large"));
                }
            }
            "transfer-encoding" => return Err(Response::text(411, "Length Required")),
            _ => {}
        }
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        host,
        body: vec![0; length],
    })
}

pub(crate) fn route(ctx: &Context, req: &Request) -> Response {
    let get = matches!(req.method.as_str(), "GET" | "HEAD");
    let lower = req.path.to_ascii_lowercase();
    if let Some(token) = req.path.strip_prefix("/.well-known/acme-challenge/") {
        if !get {
            return Response::text(405, "Method Not Allowed");
        }
        return match ctx.acme.as_ref().and_then(|acme| acme(token)) {
            // RFC 8555 §8.3: the key authorization, as application/octet-stream.
            Some(key_authorization) => {
                Response::new(200, "application/octet-stream", key_authorization)
            }
            None => Response::text(404, "Not Found"),
        };
    }
    if lower == "/.well-known/autoconfig/mail/config-v1.1.xml" || lower == "/mail/config-v1.1.xml" {
        if !get {
            return Response::text(405, "Method Not Allowed");
        }
        let address = query_param(&req.query, "emailaddress");
        let domain = address
            .as_deref()
            .and_then(Address::parse)
            .map(|a| a.domain.to_string())
            .or_else(|| domain_of_host(&req.host));
        return match domain.filter(|d| is_local(ctx, d)) {
            Some(d) => Response::new(
                200,
                "application/xml; charset=utf-8",
                autoconfig::thunderbird(&ctx.clients, &d),
            ),
            None => Response::text(404, "No mail domain of this server"),
        };
    }
    if lower == "/autodiscover/autodiscover.xml" {
        if req.method != "POST" {
            return Response::text(405, "Method Not Allowed");
        }
        let body = String::from_utf8_lossy(&req.body);
        let address = autoconfig::requested_address(&body)
            .filter(|a| Address::parse(a).is_some_and(|a| is_local(ctx, a.domain.as_str())));
        return match address {
            Some(a) => Response::new(
                200,
                "application/xml; charset=utf-8",
                autoconfig::autodiscover(&ctx.clients, &a),
            ),
            None => Response::text(404, "No mail domain of this server"),
        };
    }
    Response::text(404, "Not Found")
}

fn is_local(ctx: &Context, domain: &str) -> bool {
    Domain::parse(domain).is_some_and(|d| ctx.directory.store().domain_exists(&d).unwrap_or(false))
}

/// `autoconfig.example.com[:port]` → `example.com`.
fn domain_of_host(host: &str) -> Option<String> {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let name = name.strip_prefix("autoconfig.").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
}

/// A query parameter, percent-decoded (RFC 3986 §2.1; `+` is a space in form encoding).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))?
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_refuses_what_it_does_not_serve() {
        let r = parse_head(b"GET /mail/config-v1.1.xml?emailaddress=bob%40example.org HTTP/1.1\r\nHost: autoconfig.example.org\r\n\r\n").unwrap();
        assert_eq!(r.path, "/mail/config-v1.1.xml");
        assert_eq!(
            query_param(&r.query, "emailaddress").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(domain_of_host(&r.host).as_deref(), Some("example.org"));
        assert_eq!(
            domain_of_host("example.org:8080").as_deref(),
            Some("example.org")
        );
        let status = |h: &[u8]| parse_head(h).err().map(|r| r.status);
        assert_eq!(status(b"GET / HTTP/2\r\n\r\n"), Some(505));
        assert_eq!(status(b"GET /\r\n\r\n"), Some(400));
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Some(411)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            Some(413)
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Some(400)
        );
        assert_eq!(percent_decode("%zz"), None);
    }
}
