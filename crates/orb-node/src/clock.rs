//! The node's clock for records (activations, aliases, schedules…): one
//! place, at the bottom, so no module takes its time from another's.

use std::time::SystemTime;

/// Now, as RFC 3339 with milliseconds (UTC).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
