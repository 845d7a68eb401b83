//! The node's clock for records (activations, aliases, schedules…): one
//! place, at the bottom, so no module takes its time from another's.

use std::time::SystemTime;

/// Now, as RFC 3339 with milliseconds (UTC).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// `ms` since the Unix epoch, as RFC 3339 with milliseconds (UTC).
#[cfg_attr(not(feature = "network"), allow(dead_code))]
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}
