//! Dropping root after the ports are bound (the seeds' Postfix/Dovecot practice: the daemons
//! run as an unprivileged user). Runs before any thread is started, so the credentials change
//! for the whole process.
#![allow(unsafe_code)]

use anyhow::{Context as _, bail};
use std::ffi::{CStr, CString};
use std::path::Path;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub struct User {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// The configured user, or `facteur` if it exists, else `nobody`.
pub fn target_user(run_as: &str) -> anyhow::Result<User> {
    if !run_as.is_empty() {
        return lookup(run_as).with_context(|| format!("key `run_as`: no system user `{run_as}`"));
    }
    lookup("facteur")
        .or_else(|_| lookup("nobody"))
        .context("neither user `facteur` nor `nobody` exists; set `run_as`")
}

fn lookup(name: &str) -> anyhow::Result<User> {
    let cname = CString::new(name)?;
    // SAFETY: getpwnam returns NULL or a pointer to static storage valid until the next call;
    // we copy the fields out immediately and no other thread exists yet.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        bail!("no user {name}");
    }
    // SAFETY: pw is non-null and points to a valid passwd record (see above).
    let (uid, gid, pw_name) =
        unsafe { ((*pw).pw_uid, (*pw).pw_gid, CStr::from_ptr((*pw).pw_name)) };
    Ok(User {
        name: pw_name.to_string_lossy().into_owned(),
        uid,
        gid,
    })
}

/// Gives `path` and whatever below it is not yet the user's to `user`. What the user owns was
/// made after a drop, so its contents are the user's too (blob directories are not walked).
pub fn chown_tree(path: &Path, user: &User) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.uid() != user.uid {
        std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("giving {} to user {}", path.display(), user.name))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.metadata()?.uid() != user.uid {
                chown_tree(&entry.path(), user)?;
            }
        }
    }
    Ok(())
}

/// Fails with advice when `user` cannot reach `dir` (a parent without search permission, such
/// as /root), instead of failing later with a bare "permission denied".
pub fn check_reachable(dir: &Path, user: &User) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let dir = dir.canonicalize()?;
    for ancestor in dir.ancestors().skip(1) {
        let m = std::fs::metadata(ancestor)?;
        let mode = m.mode();
        let searchable = if m.uid() == user.uid {
            mode & 0o100 != 0
        } else if m.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            bail!(
                "user {} cannot reach {} because {} is closed to it; set `data_dir` to a directory \
                 outside it (e.g. /var/lib/facteur) or `run_as` to a user that can reach it",
                user.name,
                dir.display(),
                ancestor.display()
            );
        }
    }
    Ok(())
}

/// Switches the process to `user` for good: groups, gid, then uid.
pub fn drop_to(user: &User) -> anyhow::Result<()> {
    // SAFETY: plain syscalls on integers; order matters (uid last, or the others are refused).
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(user.gid) == 0
            && libc::setuid(user.uid) == 0
    };
    if !ok {
        bail!(
            "cannot switch to user {}: {}",
            user.name,
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: as above.
    if unsafe { libc::setuid(0) } == 0 {
        bail!("privileges were not dropped: setuid(0) still succeeds");
    }
    Ok(())
}
