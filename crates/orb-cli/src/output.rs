use orb_core::OrbError;
use serde_json::Value;

/// Prints an error to stderr: `error[code]: message`, plus details.
pub fn print_error(e: &anyhow::Error) {
    if let Some(orb_client::ClientError::Api { error, .. }) =
        e.downcast_ref::<orb_client::ClientError>()
    {
        print_orb_error(error);
    } else if let Some(error) = e.downcast_ref::<OrbError>() {
        print_orb_error(error);
    } else if let Some(error) = e.downcast_ref::<orb_net::NetError>() {
        eprintln!("error[{}]: {e:#}", error.code());
    } else {
        eprintln!("error: {e:#}");
    }
}

fn print_orb_error(error: &OrbError) {
    eprintln!("error[{}]: {}", error.code, error.message);
    if let Some(a) = error.details.get("activation").and_then(Value::as_str) {
        eprintln!("  activation: {a} (orb act show {a})");
    }
}

pub fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
}

/// A JSON value as a user would write it: strings without quotes.
pub fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).expect("serialisable"),
    }
}
