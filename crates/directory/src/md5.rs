//! MD5 (RFC 1321) with its chaining state exposed, for CRAM-MD5 only (RFC 2195).
//!
//! CRAM-MD5 needs HMAC-MD5 (RFC 2104) keyed with the password. Like Dovecot, facteur keeps
//! the MD5 states after the first block of `key XOR ipad` and of `key XOR opad` instead of
//! the password: [`HmacMd5State`]. Those states are still equivalent to the password for
//! CRAM-MD5 itself (decision 0013), so they are only stored when the admin enables it.
//!
//! MD5 is broken for collisions; HMAC-MD5 as a challenge-response MAC is not, which is all
//! CRAM-MD5 asks of it. Nothing else in facteur uses this module.

/// The initial chaining values A, B, C, D (RFC 1321 §3.3).
const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Per-round shift amounts (RFC 1321 §3.4).
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// T[i] = floor(2^32 * abs(sin(i + 1))) (RFC 1321 §3.4), as a table.
const T: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// An MD5 computation in progress.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    /// Bytes hashed so far.
    len: u64,
    buf: [u8; 64],
    buf_len: usize,
}

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl Md5 {
    pub fn new() -> Md5 {
        Md5::resume(INIT, 0)
    }

    /// Continues from a chaining state reached after `len` bytes, `len` a multiple of 64.
    pub fn resume(state: [u32; 4], len: u64) -> Md5 {
        debug_assert!(len.is_multiple_of(64));
        Md5 {
            state,
            len,
            buf: [0; 64],
            buf_len: 0,
        }
    }

    /// The chaining state; meaningful when a whole number of blocks was hashed.
    pub fn state(&self) -> [u32; 4] {
        debug_assert_eq!(self.buf_len, 0);
        self.state
    }

    pub fn update(&mut self, mut data: &[u8]) -> &mut Md5 {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return self;
            }
            let block = self.buf;
            compress(&mut self.state, &block);
            self.buf_len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block.try_into().expect("64-byte block"));
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
        self
    }

    /// Pads (RFC 1321 §3.1, §3.2) and returns the digest (§3.5: A, B, C, D low byte first).
    pub fn finalize(&mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = vec![0x80u8];
        let used = (self.len % 64) as usize;
        let zeros = if used < 56 { 55 - used } else { 119 - used };
        pad.extend(std::iter::repeat_n(0u8, zeros));
        pad.extend_from_slice(&bits.to_le_bytes());
        let len = self.len;
        self.update(&pad);
        self.len = len;
        let mut out = [0u8; 16];
        for (i, word) in self.state.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::new().update(data).finalize()
}

/// The four rounds on one 64-byte block (RFC 1321 §3.4).
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut x = [0u32; 16];
    for (i, word) in x.iter_mut().enumerate() {
        *word = u32::from_le_bytes(block[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    }
    let [mut a, mut b, mut c, mut d] = *state;
    for i in 0..64 {
        let (f, k) = match i / 16 {
            0 => ((b & c) | (!b & d), i),
            1 => ((b & d) | (c & !d), (5 * i + 1) % 16),
            2 => (b ^ c ^ d, (3 * i + 5) % 16),
            _ => (c ^ (b | !d), (7 * i) % 16),
        };
        let rotated = a
            .wrapping_add(f)
            .wrapping_add(x[k])
            .wrapping_add(T[i])
            .rotate_left(S[i]);
        (a, b, c, d) = (d, b.wrapping_add(rotated), b, c);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

/// HMAC-MD5 (RFC 2104) reduced to the MD5 states after the padded key blocks: what CRAM-MD5
/// stores in place of the password (Dovecot's `CRAM-MD5` scheme does the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HmacMd5State {
    pub inner: [u32; 4],
    pub outer: [u32; 4],
}

impl HmacMd5State {
    /// RFC 2104 §2: keys longer than the block are hashed first, then padded with zeros.
    pub fn new(key: &[u8]) -> HmacMd5State {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..16].copy_from_slice(&md5(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| {
            let mut padded = block;
            padded.iter_mut().for_each(|b| *b ^= byte);
            Md5::new().update(&padded).state()
        };
        HmacMd5State {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// HMAC-MD5(key, text) = MD5(K ^ opad, MD5(K ^ ipad, text)).
    pub fn mac(&self, text: &[u8]) -> [u8; 16] {
        let inner = Md5::resume(self.inner, 64).update(text).finalize();
        Md5::resume(self.outer, 64).update(&inner).finalize()
    }

    /// 32 bytes: the inner then the outer state, each word little-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner
            .iter()
            .chain(&self.outer)
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<HmacMd5State> {
        if bytes.len() != 32 {
            return None;
        }
        let word = |i: usize| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4"));
        Some(HmacMd5State {
            inner: [word(0), word(1), word(2), word(3)],
            outer: [word(4), word(5), word(6), word(7)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        // RFC 1321 Appendix A.5.
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, digest) in suite {
            assert_eq!(hex(&md5(input.as_bytes())), digest, "MD5({input:?})");
            // The same through byte-by-byte updates (buffering across blocks).
            let mut m = Md5::new();
            for b in input.as_bytes() {
                m.update(&[*b]);
            }
            assert_eq!(hex(&m.finalize()), digest, "MD5({input:?}) by bytes");
        }
        // Lengths around the padding boundary (55, 56, 64 bytes) against known digests.
        assert_eq!(hex(&md5(&[b'a'; 56])), "3b0c8ac703f828b04c6c197006d17218");
        assert_eq!(hex(&md5(&[b'a'; 64])), "014842d480b571495a4a0363793f7367");
    }

    #[test]
    fn rfc2104_hmac_md5_vectors() {
        // RFC 2104 §Appendix "Test Vectors" (also RFC 2202 §2, cases 1-3, 6).
        let cases: [(&[u8], &[u8], &str); 4] = [
            (&[0x0b; 16], b"Hi There", "9294727a3638bb1c13f48ef8158bfc9d"),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (&[0xaa; 16], &[0xdd; 50], "56be34521d144c88dbb8c733f0e8b3f6"),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
        ];
        for (key, text, mac) in cases {
            let state = HmacMd5State::new(key);
            assert_eq!(hex(&state.mac(text)), mac);
            let stored = HmacMd5State::from_bytes(&state.to_bytes()).unwrap();
            assert_eq!(stored, state);
        }
        assert!(HmacMd5State::from_bytes(&[0; 31]).is_none());
    }
}
