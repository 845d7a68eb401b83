use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A function's identity: the SHA-256 of its component bytes, written
/// `sha256:<64 lowercase hex>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionId([u8; 32]);

/// A string that is not a function id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{0}` is not a function id: expected `sha256:` followed by 64 hex digits")]
pub struct InvalidFunctionId(pub String);

impl FunctionId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The 64 hex digits without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `s` looks like a hash (and not like an alias or a path).
    pub fn looks_like_id(s: &str) -> bool {
        s.parse::<Self>().is_ok()
    }
}

/// In the API: a string `sha256:<64 lowercase hex>`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FunctionId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^sha256:[0-9a-f]{64}$"))
            .description(Some("A function's id: the SHA-256 of its component bytes"))
            .examples([serde_json::json!(
                "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
            )])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FunctionId {}

impl FromStr for FunctionId {
    type Err = InvalidFunctionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex_part = s.strip_prefix("sha256:").unwrap_or(s);
        if hex_part.len() != 64 {
            return Err(InvalidFunctionId(s.to_string()));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut out)
            .map_err(|_| InvalidFunctionId(s.to_string()))?;
        Ok(Self(out))
    }
}

impl TryFrom<String> for FunctionId {
    type Error = InvalidFunctionId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FunctionId> for String {
    fn from(id: FunctionId) -> String {
        id.to_string()
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let id = FunctionId::of(b"hello");
        let s = id.to_string();
        assert!(s.starts_with("sha256:2cf24dba"));
        assert_eq!(s.parse::<FunctionId>().unwrap(), id);
        assert_eq!(id.hex().parse::<FunctionId>().unwrap(), id);
        assert!("sha256:xyz".parse::<FunctionId>().is_err());
        assert!("hello".parse::<FunctionId>().is_err());
        assert!(!FunctionId::looks_like_id("./hello.wasm"));
    }
}
