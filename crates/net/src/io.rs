//! Writing replies: what a session queued goes out in one write, bounded by a timeout, so a
//! client that stops reading cannot hold a connection forever.

use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Writes and flushes `out`, then empties it. A write that does not finish within `timeout`
/// fails with "write timed out".
pub async fn flush_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    timeout: Duration,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let written = tokio::time::timeout(timeout, async {
        stream.write_all(out).await?;
        stream.flush().await
    })
    .await;
    out.clear();
    written.map_err(|_| std::io::Error::other("write timed out"))?
}

/// What a driver's wait for input produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes read into the buffer; 0 is the end of the stream.
    Read(usize),
    /// Shutdown began (reported once per connection: `shutdown_seen` remembers it).
    Shutdown,
    /// Nothing arrived within the timeout.
    Timeout,
}

/// Waits for the next bytes from the client, for shutdown, or for the timeout, whichever comes
/// first. Shutdown wins a tie, so a busy client cannot delay it.
pub async fn next_input<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    timeout: Duration,
    shutdown: &crate::Shutdown,
    shutdown_seen: &mut bool,
) -> std::io::Result<Input> {
    use tokio::io::AsyncReadExt;
    tokio::select! {
        biased;
        _ = shutdown.triggered(), if !*shutdown_seen => {
            *shutdown_seen = true;
            Ok(Input::Shutdown)
        }
        read = tokio::time::timeout(timeout, stream.read(buf)) => match read {
            Ok(r) => r.map(Input::Read),
            Err(_) => Ok(Input::Timeout),
        },
    }
}
