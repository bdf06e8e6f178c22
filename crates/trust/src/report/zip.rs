//! Just enough of the ZIP format (PKWARE APPNOTE 6.3) to read the archives reporters send:
//! the central directory, entries stored (method 0) or deflated (method 8, RFC 1951), CRC-32
//! checked. Encrypted entries, ZIP64 and archives split across disks are refused. The
//! decompressed total is capped, whatever the sizes the archive declares.

use super::ReportError;
use flate2::{Crc, read::DeflateDecoder};
use std::io::Read;

/// End of central directory record.
const EOCD: u32 = 0x0605_4b50;
/// Central directory file header.
const CENTRAL: u32 = 0x0201_4b50;
/// Local file header.
const LOCAL: u32 = 0x0403_4b50;
/// The fixed part of an end of central directory record; a comment of up to 65535 follows.
const EOCD_LEN: usize = 22;

fn bad(reason: &str) -> ReportError {
    ReportError::Decompress(format!("zip: {reason}"))
}

fn u16_at(data: &[u8], at: usize) -> Option<usize> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([bytes[0], bytes[1]])))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The files of `archive` (name, contents), at most `max_entries` of them and `limit`
/// bytes in all; directories are skipped.
pub(super) fn extract(
    archive: &[u8],
    limit: usize,
    max_entries: usize,
) -> Result<Vec<(String, Vec<u8>)>, ReportError> {
    let eocd = find_eocd(archive).ok_or_else(|| bad("no end of central directory"))?;
    let disk = u16_at(archive, eocd + 4).ok_or_else(|| bad("truncated"))?;
    let cd_disk = u16_at(archive, eocd + 6).ok_or_else(|| bad("truncated"))?;
    if disk != 0 || cd_disk != 0 {
        return Err(bad("multi-disk archive"));
    }
    let entries = u16_at(archive, eocd + 10).ok_or_else(|| bad("truncated"))?;
    let offset = u32_at(archive, eocd + 16).ok_or_else(|| bad("truncated"))?;
    if offset == u32::MAX || entries == 0xffff {
        return Err(bad("ZIP64 archive"));
    }

    let mut files = Vec::new();
    let mut remaining = limit;
    let mut at = offset as usize;
    for _ in 0..entries {
        if u32_at(archive, at) != Some(CENTRAL) {
            return Err(bad("damaged central directory"));
        }
        let field = |delta: usize| u16_at(archive, at + delta).ok_or_else(|| bad("truncated"));
        let flags = field(8)?;
        let method = field(10)?;
        let crc = u32_at(archive, at + 16).ok_or_else(|| bad("truncated"))?;
        let compressed = u32_at(archive, at + 20).ok_or_else(|| bad("truncated"))?;
        let size = u32_at(archive, at + 24).ok_or_else(|| bad("truncated"))?;
        let name_len = field(28)?;
        let extra_len = field(30)?;
        let comment_len = field(32)?;
        let local = u32_at(archive, at + 42).ok_or_else(|| bad("truncated"))? as usize;
        let name = archive
            .get(at + 46..at + 46 + name_len)
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .ok_or_else(|| bad("truncated"))?;
        at += 46 + name_len + extra_len + comment_len;

        if name.ends_with('/') {
            continue;
        }
        if files.len() >= max_entries {
            break;
        }
        if flags & 1 != 0 {
            return Err(bad("encrypted entry"));
        }
        if compressed == u32::MAX || size == u32::MAX {
            return Err(bad("ZIP64 entry"));
        }
        // The declared size is only a hint: the reading below is capped anyway.
        if size as usize > remaining {
            return Err(ReportError::TooLarge);
        }

        if u32_at(archive, local) != Some(LOCAL) {
            return Err(bad("damaged local header"));
        }
        let local_name = u16_at(archive, local + 26).ok_or_else(|| bad("truncated"))?;
        let local_extra = u16_at(archive, local + 28).ok_or_else(|| bad("truncated"))?;
        let start = local + 30 + local_name + local_extra;
        let data = archive
            .get(start..start.saturating_add(compressed as usize))
            .ok_or_else(|| bad("truncated entry"))?;

        let contents = match method {
            0 => {
                if data.len() > remaining {
                    return Err(ReportError::TooLarge);
                }
                data.to_vec()
            }
            8 => {
                let mut contents = Vec::with_capacity((size as usize).min(1 << 20));
                DeflateDecoder::new(data)
                    .take(remaining as u64 + 1)
                    .read_to_end(&mut contents)
                    .map_err(|err| bad(&err.to_string()))?;
                if contents.len() > remaining {
                    return Err(ReportError::TooLarge);
                }
                contents
            }
            other => return Err(bad(&format!("compression method {other}"))),
        };
        let mut check = Crc::new();
        check.update(&contents);
        if check.sum() != crc {
            return Err(bad("CRC mismatch"));
        }
        remaining -= contents.len();
        files.push((name, contents));
    }
    Ok(files)
}

/// The offset of the end of central directory record: the last one in the final 22 + 65535
/// bytes.
fn find_eocd(archive: &[u8]) -> Option<usize> {
    let last = archive.len().checked_sub(EOCD_LEN)?;
    let first = last.saturating_sub(0xffff);
    (first..=last)
        .rev()
        .find(|&at| u32_at(archive, at) == Some(EOCD))
}
