//! COMPRESS=DEFLATE (RFC 4978): after `OK`, both directions are raw DEFLATE (RFC 1951, no
//! zlib header). Every flush of the session's output ends with a sync flush, so the client can
//! decode each response as soon as it arrives (RFC 4978 §4).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CHUNK: usize = 16 * 1024;

pub(crate) struct Deflate<'a, S> {
    inner: &'a mut S,
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes received and not yet inflated.
    input: Vec<u8>,
    input_pos: usize,
    /// Compressed bytes to write to the socket.
    output: Vec<u8>,
    output_pos: usize,
    /// Bytes accepted by poll_write since the last sync flush.
    pending: bool,
}

impl<'a, S> Deflate<'a, S> {
    pub fn new(inner: &'a mut S) -> Self {
        Deflate {
            inner,
            // Level 1: most of the saving for a fraction of the CPU of the default level.
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            input: Vec::with_capacity(CHUNK),
            input_pos: 0,
            output: Vec::with_capacity(CHUNK),
            output_pos: 0,
            pending: false,
        }
    }

    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<usize> {
        let mut consumed = 0;
        loop {
            if self.output.capacity() - self.output.len() < 64 {
                self.output.reserve(CHUNK);
            }
            let before_in = self.compress.total_in();
            let before_out = self.compress.total_out();
            self.compress
                .compress_vec(&data[consumed..], &mut self.output, flush)
                .map_err(io::Error::other)?;
            consumed += (self.compress.total_in() - before_in) as usize;
            let produced = self.compress.total_out() - before_out;
            let room_left = self.output.capacity() > self.output.len();
            if consumed == data.len() && (produced == 0 || room_left) {
                return Ok(consumed);
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<'_, S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.output_pos < self.output.len() {
            let n =
                ready!(Pin::new(&mut *self.inner).poll_write(cx, &self.output[self.output_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.output_pos += n;
        }
        self.output.clear();
        self.output_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.input_pos < this.input.len() {
                let before_in = this.decompress.total_in();
                let before_out = this.decompress.total_out();
                let out = buf.initialize_unfilled();
                let status = this
                    .decompress
                    .decompress(&this.input[this.input_pos..], out, FlushDecompress::Sync)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                this.input_pos += (this.decompress.total_in() - before_in) as usize;
                let produced = (this.decompress.total_out() - before_out) as usize;
                buf.advance(produced);
                if produced > 0 {
                    return Poll::Ready(Ok(()));
                }
                if status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if this.input_pos < this.input.len() && produced == 0 {
                    // Input left but nothing came out: the rest needs more input.
                    this.input.drain(..this.input_pos);
                    this.input_pos = 0;
                }
            }
            if this.input_pos >= this.input.len() {
                this.input.clear();
                this.input_pos = 0;
            }
            let start = this.input.len();
            this.input.resize(start + CHUNK, 0);
            let mut rb = ReadBuf::new(&mut this.input[start..]);
            let polled = Pin::new(&mut *this.inner).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            this.input.truncate(start + n);
            ready!(polled)?;
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len() - this.output_pos > 4 * CHUNK {
            ready!(this.poll_drain(cx))?;
        }
        let n = this.deflate(data, FlushCompress::None)?;
        this.pending = true;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending {
            this.deflate(&[], FlushCompress::Sync)?;
            this.pending = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut *this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut *this).poll_flush(cx))?;
        Pin::new(&mut *this.inner).poll_shutdown(cx)
    }
}
