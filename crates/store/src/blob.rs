//! Content-addressed message bodies: written once, named by their SHA-256.
//!
//! Small bodies travel inline into the database transaction that references them (one fsync
//! for a whole group commit). Larger ones become files `blobs/hh/<hash>`, made durable before
//! any row names them: temp file, fsync, rename, fsync of the directory (the chasquid `safeio`
//! order). A crash between the rename and the commit leaves an unreferenced file, which
//! `check` reports and the server removes at its next start
//! (`Store::remove_unreferenced_files`); never a row without its content.

use crate::{Result, io_err};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// SHA-256 of a blob's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_slice(raw: &[u8]) -> Option<BlobHash> {
        raw.try_into().ok().map(BlobHash)
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A finished blob, durable if it is a file, ready to be referenced by `deliver`.
#[derive(Debug)]
pub struct Blob {
    pub hash: BlobHash,
    pub size: u64,
    pub(crate) inline: Option<Vec<u8>>,
    data_dir: PathBuf,
}

impl Blob {
    /// The content, for parsing at delivery.
    pub fn content(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match &self.inline {
            Some(bytes) => Ok(bytes.as_slice().into()),
            None => {
                let path = blob_path(&self.data_dir, self.hash);
                let bytes =
                    std::fs::read(&path).map_err(io_err(format!("reading {}", path.display())))?;
                Ok(bytes.into())
            }
        }
    }
}

/// Streams a body in; stays in memory up to the inline limit, then spills to a temp file.
pub struct BlobWriter {
    data_dir: PathBuf,
    inline_max: u64,
    hasher: Sha256,
    size: u64,
    buffer: Vec<u8>,
    spill: Option<(File, PathBuf)>,
}

impl BlobWriter {
    pub(crate) fn new(data_dir: PathBuf, inline_max: u64) -> BlobWriter {
        BlobWriter {
            data_dir,
            inline_max,
            hasher: Sha256::new(),
            size: 0,
            buffer: Vec::new(),
            spill: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The content written so far: borrowed while in memory, read back from the temporary
    /// file once spilled (for checks that need the whole message before it is kept).
    pub fn contents(&mut self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match &mut self.spill {
            None => Ok(std::borrow::Cow::Borrowed(&self.buffer)),
            Some((file, path)) => {
                file.flush().map_err(io_err("writing a blob"))?;
                let data =
                    std::fs::read(&*path).map_err(io_err(format!("reading {}", path.display())))?;
                Ok(std::borrow::Cow::Owned(data))
            }
        }
    }

    /// True while the body is in memory: `finish` then does no I/O and may run anywhere.
    pub fn in_memory(&self) -> bool {
        self.spill.is_none()
    }

    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        if self.spill.is_none() && self.size > self.inline_max {
            let path = self.data_dir.join("tmp").join(temp_name());
            let mut file =
                File::create(&path).map_err(io_err(format!("creating {}", path.display())))?;
            file.write_all(&self.buffer)
                .map_err(io_err("writing a blob"))?;
            self.buffer = Vec::new();
            self.spill = Some((file, path));
        }
        match &mut self.spill {
            Some((file, _)) => file.write_all(data).map_err(io_err("writing a blob")),
            None => {
                self.buffer.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// Completes the blob. For a file blob this blocks on two fsyncs: call it off the async
    /// runtime's worker threads.
    pub fn finish(mut self) -> Result<Blob> {
        let hash = BlobHash(std::mem::take(&mut self.hasher).finalize().into());
        let data_dir = std::mem::take(&mut self.data_dir);
        let Some((file, tmp)) = self.spill.take() else {
            return Ok(Blob {
                hash,
                size: self.size,
                inline: Some(std::mem::take(&mut self.buffer)),
                data_dir,
            });
        };
        // From here the temp file is ours to rename or remove, not Drop's.
        let durable = file.sync_all();
        drop(file);
        if let Err(e) = durable {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(format!("fsync {}", tmp.display()))(e));
        }
        let dest = blob_path(&data_dir, hash);
        let dir = dest.parent().expect("blob paths have a parent");
        if dest.exists() {
            // Same content already stored and durable.
            let _ = std::fs::remove_file(&tmp);
        } else {
            if !dir.exists() {
                std::fs::create_dir_all(dir)
                    .map_err(io_err(format!("creating {}", dir.display())))?;
                sync_dir(&data_dir.join("blobs"))?;
            }
            std::fs::rename(&tmp, &dest)
                .map_err(io_err(format!("renaming to {}", dest.display())))?;
            sync_dir(dir)?;
        }
        Ok(Blob {
            hash,
            size: self.size,
            inline: None,
            data_dir,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // An abandoned message (client gone, too big) leaves no temp file behind.
        if let Some((_, path)) = &self.spill {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) fn blob_path(data_dir: &Path, hash: BlobHash) -> PathBuf {
    let hex = hash.to_hex();
    data_dir.join("blobs").join(&hex[..2]).join(hex)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("fsync {}", dir.display())))
}

fn temp_name() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}.tmp", std::process::id())
}

/// Removes temp files left by a crash: nothing references them.
pub(crate) fn clean_tmp(data_dir: &Path) {
    let own = format!("{}-", std::process::id());
    if let Ok(entries) = std::fs::read_dir(data_dir.join("tmp")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let stale = name.to_str().is_some_and(|n| !n.starts_with(&own));
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
