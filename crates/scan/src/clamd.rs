//! ClamAV's clamd, through the `INSTREAM` command.
//!
//! Reference: clamd(8), section "COMMANDS". Commands carry a `z` prefix, so that both the
//! command and the reply end with a NUL character. `zINSTREAM\0` is followed by chunks, each
//! "a 4 byte unsigned integer in network byte order" length and that many octets, and ends
//! with a zero-length chunk; clamd answers `stream: OK`, `stream: <signature> FOUND` or
//! `<text> ERROR`. A stream longer than the daemon's StreamMaxLength is answered with
//! `INSTREAM size limit exceeded. ERROR` and the connection is closed.

use crate::conn::{Endpoint, Fault, duplex, read_bounded};
use crate::{ScanError, printable};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Largest chunk sent (clamdscan sends smaller ones; clamd accepts any size up to its limits).
const CHUNK: usize = 64 * 1024;
/// Longest reply read: a signature name is a few dozen octets.
const MAX_REPLY: usize = 4096;

/// A client of one clamd daemon. Each call opens its own connection.
#[derive(Debug, Clone)]
pub struct Clamd {
    endpoint: Endpoint,
}

/// What clamd found in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamVerdict {
    /// Nothing found.
    Clean,
    /// A signature matched; its name as clamd reports it (e.g. `Eicar-Test-Signature`).
    Infected(String),
}

impl Clamd {
    /// A client for clamd at `address` (`unix:/run/clamav/clamd.ctl`, `tcp:127.0.0.1:3310`
    /// or `127.0.0.1:3310`). Each call ends within `timeout`, connecting included; the
    /// connection itself must be made within the smaller of `timeout` and
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
    pub fn parse(address: &str, timeout: Duration) -> Result<Clamd, ScanError> {
        Ok(Clamd {
            endpoint: Endpoint::parse("clamd", address, timeout)?,
        })
    }

    /// Sets the connect timeout (never more than the overall timeout; zero is ignored).
    pub fn with_connect_timeout(mut self, limit: Duration) -> Clamd {
        self.endpoint.set_connect_timeout(limit);
        self
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.endpoint.address
    }

    /// Scans `data` (a whole message: clamd decodes MIME parts itself) with `zINSTREAM`.
    ///
    /// Data longer than clamd's StreamMaxLength gives [`ScanError::Answered`] with clamd's
    /// "INSTREAM size limit exceeded".
    pub async fn scan(&self, data: &[u8]) -> Result<ClamVerdict, ScanError> {
        let reply = self
            .endpoint
            .exchange(|stream| {
                duplex(
                    stream,
                    |mut writer| async move {
                        // clamd(8) INSTREAM: the command, then <length><data> chunks, then a
                        // zero-length chunk.
                        writer.write_all(b"zINSTREAM\0").await?;
                        let mut buf = Vec::with_capacity(4 + CHUNK.min(data.len()));
                        for chunk in data.chunks(CHUNK) {
                            let len = u32::try_from(chunk.len()).map_err(io::Error::other)?;
                            buf.clear();
                            buf.extend_from_slice(&len.to_be_bytes());
                            buf.extend_from_slice(chunk);
                            writer.write_all(&buf).await?;
                        }
                        writer.write_all(&0u32.to_be_bytes()).await?;
                        writer.flush().await
                    },
                    |mut reader| async move { read_reply(&mut reader).await },
                )
            })
            .await?;
        let verdict = parse_scan_reply(&reply).map_err(|fault| self.endpoint.error(fault))?;
        tracing::debug!(clamd = %self.endpoint.address, bytes = data.len(), ?verdict, "clamd scan");
        Ok(verdict)
    }

    /// Checks that clamd answers: `zPING` must be answered `PONG` (clamd(8), "PING").
    pub async fn ping(&self) -> Result<(), ScanError> {
        let reply = self.command(b"zPING\0").await?;
        if reply == b"PONG" {
            Ok(())
        } else {
            Err(self
                .endpoint
                .error(Fault::unexpected("expected PONG, got", &reply)))
        }
    }

    /// clamd's version line, e.g. `ClamAV 1.4.6/27450/Mon Nov 23 09:28:01 2026`
    /// (clamd(8), "VERSION").
    pub async fn version(&self) -> Result<String, ScanError> {
        let reply = self.command(b"zVERSION\0").await?;
        if reply.is_empty() {
            return Err(self
                .endpoint
                .error(Fault::unexpected("empty reply", &reply)));
        }
        Ok(printable(&reply, 200))
    }

    /// Sends a one-word command and returns its reply without the NUL.
    async fn command(&self, command: &'static [u8]) -> Result<Vec<u8>, ScanError> {
        self.endpoint
            .exchange(|stream| {
                duplex(
                    stream,
                    |mut writer| async move {
                        writer.write_all(command).await?;
                        writer.flush().await
                    },
                    |mut reader| async move { read_reply(&mut reader).await },
                )
            })
            .await
    }
}

/// Reads one NUL-terminated reply (the `z` prefix's delimiter) and returns it without the NUL.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, Fault> {
    let mut reply = read_bounded(reader, MAX_REPLY, |buf| buf.contains(&0)).await?;
    match reply.iter().position(|&b| b == 0) {
        Some(end) => {
            reply.truncate(end);
            Ok(reply)
        }
        None => Err(Fault::Closed),
    }
}

/// Reads an `INSTREAM` reply (clamd(8), "INSTREAM"; the reply forms are those of "SCAN").
fn parse_scan_reply(reply: &[u8]) -> Result<ClamVerdict, Fault> {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim_end_matches(['\n', '\r']);
    if let Some(message) = text.strip_suffix(" ERROR") {
        let message = message.strip_prefix("stream: ").unwrap_or(message);
        let message = message.trim_end().trim_end_matches('.');
        return Err(Fault::Answered(printable(message.as_bytes(), 300)));
    }
    match text.strip_prefix("stream: ") {
        Some("OK") => Ok(ClamVerdict::Clean),
        Some(rest) => match rest.strip_suffix(" FOUND") {
            Some(name) if !name.trim().is_empty() => Ok(ClamVerdict::Infected(printable(
                name.trim().as_bytes(),
                200,
            ))),
            _ => Err(Fault::unexpected("unexpected reply", reply)),
        },
        None => Err(Fault::unexpected("unexpected reply", reply)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse() {
        assert_eq!(
            parse_scan_reply(b"stream: OK").ok(),
            Some(ClamVerdict::Clean)
        );
        assert_eq!(
            parse_scan_reply(b"stream: Eicar-Test-Signature FOUND").ok(),
            Some(ClamVerdict::Infected("Eicar-Test-Signature".into()))
        );
        assert_eq!(
            parse_scan_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\n").ok(),
            Some(ClamVerdict::Infected("Win.Test.EICAR_HDB-1".into()))
        );
        match parse_scan_reply(b"INSTREAM size limit exceeded. ERROR") {
            Err(Fault::Answered(message)) => assert_eq!(message, "INSTREAM size limit exceeded"),
            other => panic!("{other:?}"),
        }
        match parse_scan_reply(b"stream: Can't allocate memory ERROR") {
            Err(Fault::Answered(message)) => assert_eq!(message, "Can't allocate memory"),
            other => panic!("{other:?}"),
        }
        for bad in [
            &b""[..],
            b"stream: FOUND",
            b"stream:  FOUND",
            b"UNKNOWN COMMAND",
            b"OK",
        ] {
            assert!(
                matches!(parse_scan_reply(bad), Err(Fault::Protocol(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn signature_names_are_made_printable() {
        assert_eq!(
            parse_scan_reply(b"stream: Bad\x1bName FOUND").ok(),
            Some(ClamVerdict::Infected("Bad\\u{1b}Name".into()))
        );
    }
}
