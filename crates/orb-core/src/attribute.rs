//! Node attributes: the `key=value` labels a node carries (`--attr`) and a
//! placement requires (`require=key=value`).

/// The rule, as a pattern (for the API document): a key of 1–64 letters,
/// digits, `.`, `_`, `-`, `/`; a value of at most 256 characters, none a
/// control character.
pub const PATTERN: &str = r"^[A-Za-z0-9._/-]{1,64}=[^\u0000-\u001f\u007f-\u009f]{0,256}$";

/// Checks one attribute's key and value; the error says what is wrong.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
    if !key_ok {
        return Err(format!(
            "attribute key `{key}` must be 1-64 characters of letters, digits, `.`, `_`, `-`, `/`"
        ));
    }
    if value.chars().count() > 256 || value.chars().any(char::is_control) {
        return Err(format!(
            "attribute `{key}`: the value must be at most 256 printable characters"
        ));
    }
    Ok(())
}

/// Splits `key=value` and checks both halves.
pub fn parse(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("attribute `{text}` is not key=value (example: region=eu-west)"))?;
    check(k, v)?;
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        assert_eq!(parse("region=eu").unwrap(), ("region".into(), "eu".into()));
        assert_eq!(parse("gpu=").unwrap(), ("gpu".into(), String::new()));
        assert!(parse("no-equals").is_err());
        assert!(parse("=eu").is_err());
        assert!(parse("bad key=1").is_err());
        assert!(parse("k=\u{7}").is_err());
        assert!(parse(&format!("k={}", "é".repeat(256))).is_ok());
        assert!(parse(&format!("k={}", "é".repeat(257))).is_err());
    }
}
