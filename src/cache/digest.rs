//! `sha256:<hex>` digests: parsing (the only place blob names are validated) and a writer that
//! hashes the bytes it passes on, so blobs are verified while they stream.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A SHA-256 content digest. The hex is always 64 lowercase characters, so it is safe as a
/// file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The 64 hex characters, without the `sha256:` prefix (the blob's file name).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Parses bare hex (64 lowercase characters), as used in file names.
    pub fn from_hex(hex: &str) -> Result<Self, String> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(Self {
                hex: hex.to_owned(),
            })
        } else {
            Err(format!("{hex:?} is not 64 lowercase hex characters"))
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        Self::from_hasher(hasher)
    }

    /// The digest a SHA-256 hasher has computed.
    pub fn from_hasher(hasher: Sha256) -> Self {
        let hex = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { hex }
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{s:?} does not start with sha256:"))?;
        Self::from_hex(hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Passes bytes to `inner` while hashing and counting them.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The digest and length of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        (Digest::from_hasher(self.hasher), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_empty_input_is_the_known_value() {
        assert_eq!(Digest::of(b"").hex(), EMPTY);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"").expect("write");
        let (digest, len, _) = w.finish();
        assert_eq!((digest.hex(), len), (EMPTY, 0));
    }

    #[test]
    fn hashing_writer_matches_one_shot_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").expect("write");
        w.write_all(b"world").expect("write");
        let (digest, len, inner) = w.finish();
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!((len, inner.as_slice()), (11, b"hello world".as_slice()));
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in [
            "",
            "sha256:",
            &format!("sha512:{EMPTY}"),
            &format!("sha256:{}", EMPTY.to_uppercase()),
            &format!("sha256:{}", &EMPTY[..63]),
            &format!("sha256:{EMPTY}0"),
            "sha256:../../../../etc/passwd0000000000000000000000000000000000000",
            EMPTY,
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} accepted");
        }
        let ok: Digest = format!("sha256:{EMPTY}").parse().expect("valid");
        assert_eq!(ok.to_string(), format!("sha256:{EMPTY}"));
        let json = serde_json::to_string(&ok).expect("json");
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("back"), ok);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
