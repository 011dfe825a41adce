use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Secret material: a secret value, a password, a data key. Zeroized on drop (the whole allocation,
/// spare capacity included), redacted in `Debug`, compared in constant time, readable only through
/// [`expose`](SecretBytes::expose).
///
/// There is no `Display`, `Serialize` or `Hash` on purpose: turning a secret into text or a map key
/// should be a visible `expose()` at the call site.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes` without copying them.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `s` into a new secret. Prefer `SecretBytes::from(String)`, which moves instead, when
    /// the caller owns the string: a copy leaves the original unzeroized.
    #[allow(clippy::should_implement_trait)] // infallible, unlike `FromStr::from_str`; the API names it so
    pub fn from_str(s: &str) -> Self {
        SecretBytes::new(s.as_bytes().to_vec())
    }

    /// The secret bytes. Every read of secret material goes through here, so it can be audited.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text; `Err(NotUtf8)` for binary values.
    pub fn expose_str(&self) -> Result<&str, CryptoError> {
        std::str::from_utf8(&self.0).map_err(|_| CryptoError::NotUtf8)
    }

    /// In-place access for decryption into an already zeroizing buffer.
    pub(crate) fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes::new(v)
    }
}

impl From<String> for SecretBytes {
    /// Moves the string's buffer; nothing is copied, so no unzeroized copy is left behind.
    fn from(s: String) -> Self {
        SecretBytes::new(s.into_bytes())
    }
}

impl From<&str> for SecretBytes {
    fn from(s: &str) -> Self {
        SecretBytes::from_str(s)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(b: &[u8]) -> Self {
        SecretBytes::new(b.to_vec())
    }
}

impl PartialEq for SecretBytes {
    /// Constant time in the contents; lengths are compared first (a length is not treated as secret).
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for SecretBytes {}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<redacted {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_by_content_and_length() {
        assert_eq!(SecretBytes::from("a".to_string()), SecretBytes::new(b"a".to_vec()));
        assert_eq!(SecretBytes::from_str("a"), SecretBytes::from(&b"a"[..]));
        assert_ne!(SecretBytes::from("a"), SecretBytes::from("b"));
        assert_ne!(SecretBytes::from("a"), SecretBytes::from("ab"));
        assert_eq!(SecretBytes::default(), SecretBytes::new(Vec::new()));
    }

    #[test]
    fn from_string_moves_the_buffer() {
        let s = String::from("moved, not copied");
        let ptr = s.as_ptr();
        let secret = SecretBytes::from(s);
        assert_eq!(secret.expose().as_ptr(), ptr);
    }

    #[test]
    fn accessors() {
        let s = SecretBytes::from("héllo");
        assert_eq!(s.expose_str(), Ok("héllo"));
        assert_eq!(s.len(), 6);
        assert!(!s.is_empty());
        assert!(SecretBytes::default().is_empty());
        assert_eq!(SecretBytes::new(vec![0xff, 0xfe]).expose_str(), Err(CryptoError::NotUtf8));
    }

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from("hunter2-canary");
        let dbg = format!("{s:?} {s:#?}");
        assert_eq!(format!("{s:?}"), "SecretBytes(<redacted 14 bytes>)");
        assert!(!dbg.contains("hunter2"));
        // Neither the byte values nor their hex form leak.
        assert!(!dbg.contains("104") && !dbg.contains("68756e"));
    }
}
