//! The milter protocol's wire format and constants, version 6 (Sendmail 8.14+ libmilter
//! `include/libmilter/mfdef.h`; "The Sendmail Milter Protocol, Version 2" §LINK/PACKET PROTOCOL
//! and its version 6 additions).
//!
//! Every packet is `uint32 len` (network order, counting the command byte), one command byte,
//! then `len - 1` bytes of data. Strings are NUL-terminated; "arrays" are NUL-terminated
//! strings one after the other up to the end of the packet.

/// Protocol version this client speaks (mfdef.h `SMFI_PROT_VERSION`).
pub(crate) const VERSION: u32 = 6;
/// The oldest version a filter may answer with (libmilter's `SMFI_PROT_VERSION_MIN`).
pub(crate) const MIN_VERSION: u32 = 2;
/// First version that knows `SMFIC_DATA` (Sendmail 8.13, protocol 4).
pub(crate) const DATA_VERSION: u32 = 4;

/// mfdef.h `MILTER_CHUNK_SIZE`: the largest body chunk sent in one `SMFIC_BODY`.
pub(crate) const CHUNK_SIZE: usize = 65535;

/// The largest reply packet accepted from a filter. libmilter never sends more than its data
/// size limit (65535 by default, 1 MiB with `SMFIP_MDS_1M`, which is not offered); anything
/// larger is a broken or hostile peer, refused before any allocation.
pub(crate) const MAX_PACKET: usize = 1 << 20;

// Commands, MTA to filter (mfdef.h `SMFIC_*`).
pub(crate) const C_ABORT: u8 = b'A';
pub(crate) const C_BODY: u8 = b'B';
pub(crate) const C_CONNECT: u8 = b'C';
pub(crate) const C_MACRO: u8 = b'D';
pub(crate) const C_BODYEOB: u8 = b'E';
pub(crate) const C_HELO: u8 = b'H';
pub(crate) const C_HEADER: u8 = b'L';
pub(crate) const C_MAIL: u8 = b'M';
pub(crate) const C_EOH: u8 = b'N';
pub(crate) const C_OPTNEG: u8 = b'O';
pub(crate) const C_QUIT: u8 = b'Q';
pub(crate) const C_RCPT: u8 = b'R';
pub(crate) const C_DATA: u8 = b'T';

// Replies, filter to MTA (mfdef.h `SMFIR_*`).
pub(crate) const R_ADDRCPT: u8 = b'+';
pub(crate) const R_DELRCPT: u8 = b'-';
pub(crate) const R_ADDRCPT_PAR: u8 = b'2';
pub(crate) const R_ACCEPT: u8 = b'a';
pub(crate) const R_REPLBODY: u8 = b'b';
pub(crate) const R_CONTINUE: u8 = b'c';
pub(crate) const R_DISCARD: u8 = b'd';
pub(crate) const R_CHGFROM: u8 = b'e';
pub(crate) const R_ADDHEADER: u8 = b'h';
pub(crate) const R_INSHEADER: u8 = b'i';
pub(crate) const R_CHGHEADER: u8 = b'm';
pub(crate) const R_PROGRESS: u8 = b'p';
pub(crate) const R_QUARANTINE: u8 = b'q';
pub(crate) const R_REJECT: u8 = b'r';
pub(crate) const R_SKIP: u8 = b's';
pub(crate) const R_TEMPFAIL: u8 = b't';
pub(crate) const R_REPLYCODE: u8 = b'y';

// Actions the filter may take (mfdef.h `SMFIF_*`).
pub(crate) const F_ADDHDRS: u32 = 0x01;
pub(crate) const F_CHGBODY: u32 = 0x02;
pub(crate) const F_ADDRCPT: u32 = 0x04;
pub(crate) const F_DELRCPT: u32 = 0x08;
pub(crate) const F_CHGHDRS: u32 = 0x10;
pub(crate) const F_QUARANTINE: u32 = 0x20;
pub(crate) const F_CHGFROM: u32 = 0x40;
pub(crate) const F_ADDRCPT_PAR: u32 = 0x80;
pub(crate) const F_SETSYMLIST: u32 = 0x100;
/// Every action this client carries out, offered in `SMFIC_OPTNEG`.
pub(crate) const OFFERED_ACTIONS: u32 = F_ADDHDRS
    | F_CHGBODY
    | F_ADDRCPT
    | F_DELRCPT
    | F_CHGHDRS
    | F_QUARANTINE
    | F_CHGFROM
    | F_ADDRCPT_PAR
    | F_SETSYMLIST;

// Protocol steps the filter may turn off, and replies it may omit (mfdef.h `SMFIP_*`).
pub(crate) const P_NOCONNECT: u32 = 0x01;
pub(crate) const P_NOHELO: u32 = 0x02;
pub(crate) const P_NOMAIL: u32 = 0x04;
pub(crate) const P_NORCPT: u32 = 0x08;
pub(crate) const P_NOBODY: u32 = 0x10;
pub(crate) const P_NOHDRS: u32 = 0x20;
pub(crate) const P_NOEOH: u32 = 0x40;
pub(crate) const P_NR_HDR: u32 = 0x80;
pub(crate) const P_NOUNKNOWN: u32 = 0x100;
pub(crate) const P_NODATA: u32 = 0x200;
pub(crate) const P_SKIP: u32 = 0x400;
pub(crate) const P_RCPT_REJ: u32 = 0x800;
pub(crate) const P_NR_CONN: u32 = 0x1000;
pub(crate) const P_NR_HELO: u32 = 0x2000;
pub(crate) const P_NR_MAIL: u32 = 0x4000;
pub(crate) const P_NR_RCPT: u32 = 0x8000;
pub(crate) const P_NR_DATA: u32 = 0x1_0000;
pub(crate) const P_NR_UNKN: u32 = 0x2_0000;
pub(crate) const P_NR_EOH: u32 = 0x4_0000;
pub(crate) const P_NR_BODY: u32 = 0x8_0000;
pub(crate) const P_HDR_LEADSPC: u32 = 0x10_0000;
/// Every protocol flag this client honours, offered in `SMFIC_OPTNEG`. `SMFIP_NOUNKNOWN` is
/// trivially honoured (unknown SMTP commands are never reported); `SMFIP_RCPT_REJ` too: only
/// the recipients the server accepted are known here, so there are no rejected ones to send.
pub(crate) const OFFERED_PROTOCOL: u32 = P_NOCONNECT
    | P_NOHELO
    | P_NOMAIL
    | P_NORCPT
    | P_NOBODY
    | P_NOHDRS
    | P_NOEOH
    | P_NR_HDR
    | P_NOUNKNOWN
    | P_NODATA
    | P_SKIP
    | P_RCPT_REJ
    | P_NR_CONN
    | P_NR_HELO
    | P_NR_MAIL
    | P_NR_RCPT
    | P_NR_DATA
    | P_NR_UNKN
    | P_NR_EOH
    | P_NR_BODY
    | P_HDR_LEADSPC;

// Connection families (mfdef.h `SMFIA_*`).
pub(crate) const FAMILY_INET: u8 = b'4';
pub(crate) const FAMILY_INET6: u8 = b'6';

/// Macro classes of the `SMFIR_SETSYMLIST` lists sent after the negotiation header
/// (mfdef.h `SMFIM_*`): CONNECT, HELO, ENVFROM, ENVRCPT, DATA, EOM, EOH.
pub(crate) const MACRO_CLASSES: usize = 7;

/// One packet, ready to send: length, command, data.
pub(crate) fn packet(out: &mut Vec<u8>, command: u8, data: &[u8]) {
    // Data never exceeds a body chunk plus a few strings; a u32 always holds it, and a
    // larger input would be a bug caught by the saturating length (the peer then fails).
    let len = u32::try_from(data.len() + 1).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(command);
    out.extend_from_slice(data);
}

/// Appends `s` as a C string: NUL bytes inside (which the protocol cannot carry) are dropped.
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().copied().filter(|&b| b != 0));
    out.push(0);
}

/// A reader over a reply's data, every access bounds-checked.
pub(crate) struct Data<'a> {
    rest: &'a [u8],
}

impl<'a> Data<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Data<'a> {
        Data { rest: data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_be_bytes(*head))
    }

    /// The next NUL-terminated string, without its NUL; None when no NUL ends it.
    pub(crate) fn cstr(&mut self) -> Option<&'a [u8]> {
        let nul = self.rest.iter().position(|&b| b == 0)?;
        let s = &self.rest[..nul];
        self.rest = &self.rest[nul + 1..];
        Some(s)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Human name of a reply code, for error messages.
pub(crate) fn reply_name(code: u8) -> String {
    let name = match code {
        R_ADDRCPT => "ADDRCPT",
        R_DELRCPT => "DELRCPT",
        R_ADDRCPT_PAR => "ADDRCPT_PAR",
        R_ACCEPT => "ACCEPT",
        R_REPLBODY => "REPLBODY",
        R_CONTINUE => "CONTINUE",
        R_DISCARD => "DISCARD",
        R_CHGFROM => "CHGFROM",
        R_ADDHEADER => "ADDHEADER",
        R_INSHEADER => "INSHEADER",
        R_CHGHEADER => "CHGHEADER",
        R_PROGRESS => "PROGRESS",
        R_QUARANTINE => "QUARANTINE",
        R_REJECT => "REJECT",
        R_SKIP => "SKIP",
        R_TEMPFAIL => "TEMPFAIL",
        R_REPLYCODE => "REPLYCODE",
        C_OPTNEG => "OPTNEG",
        b'f' => "CONN_FAIL",
        b'l' => "SETSYMLIST",
        _ => "",
    };
    if name.is_empty() {
        if code.is_ascii_graphic() {
            format!("unknown reply '{}'", code as char)
        } else {
            format!("unknown reply 0x{code:02x}")
        }
    } else {
        format!("SMFIR_{name}")
    }
}
