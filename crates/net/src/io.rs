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
    let written = tokio::time::timeout(timeout, stream.write_all(out)).await;
    out.clear();
    written.map_err(|_| std::io::Error::other("write timed out"))??;
    stream.flush().await
}
