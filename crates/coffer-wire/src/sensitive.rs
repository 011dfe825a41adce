//! Wire fields that carry secret material.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_crypto::SecretBytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sensitive string field (SecretString, RandomPassword, SecretAccessKey): zeroized on drop,
/// redacted in Debug.
#[derive(Clone, PartialEq)]
pub struct Sensitive(pub SecretBytes);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.expose_str().map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Sensitive(SecretBytes::from(s)))
    }
}

/// A sensitive blob field (SecretBinary): base64 on the wire, raw bytes in memory.
#[derive(Clone, PartialEq)]
pub struct SensitiveBlob(pub SecretBytes);

impl std::fmt::Debug for SensitiveBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SensitiveBlob(<redacted>)")
    }
}

impl Serialize for SensitiveBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = SecretBytes::from(STANDARD.encode(self.0.expose()));
        s.serialize_str(encoded.expose_str().map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for SensitiveBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Sensitive::deserialize(d)?;
        let raw =
            STANDARD.decode(s.0.expose()).map_err(|_| serde::de::Error::custom("blob member is not valid base64"))?;
        Ok(SensitiveBlob(SecretBytes::from(raw)))
    }
}
