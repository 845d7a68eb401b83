//! A thermostat device of seed 000 §7.1, on the Orb SDK.
//!
//! A room sensor reports a reading into the home's namespace with its
//! public token; the thermostat (`--decide`) also asks the firmware what the
//! furnace should do — on the node while it is reachable, in-process with
//! the firmware it carries (`--firmware FILE`) when it is not
//! (`Execution::Auto`).
//!
//! ```text
//! ORB_SERVER=http://127.0.0.1:7070 ORB_TOKEN=<device token> \
//!   cargo run -p orb-client --example thermostat_sensor -- home-7f3a9c hall 18.5
//! ORB_SERVER=… ORB_TOKEN=… cargo run -p orb-client --example thermostat_sensor -- \
//!   home-7f3a9c thermostat 19.0 --decide 20 --firmware build/guests/thermostat.wasm
//! ```
//!
//! Offline, the reading goes into the device's local store
//! (`ORB_LOCAL_DIR`, default `.orb-device`) and stays there.

use orb_client::{Client, ClientError, Execution, FunctionRef};
use serde_json::json;
use std::path::PathBuf;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        match e.code() {
            Some(code) => eprintln!("error[{}]: {e}", code.as_str()),
            None => eprintln!("error: {e}"),
        }
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: thermostat_sensor NAMESPACE ROOM CELSIUS [--decide SETPOINT] [--firmware FILE]\n\
         env: ORB_SERVER (default http://127.0.0.1:7070), ORB_TOKEN (a device's public token),\n\
              ORB_LOCAL_DIR (default .orb-device)"
    );
    std::process::exit(2)
}

async fn run() -> Result<(), ClientError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, room, celsius, rest @ ..] = args.as_slice() else {
        usage()
    };
    let celsius: f64 = celsius.parse().unwrap_or_else(|_| usage());
    let (mut setpoint, mut firmware) = (None, None);
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--decide" => setpoint = Some(value.parse::<f64>().unwrap_or_else(|_| usage())),
            "--firmware" => firmware = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    let server = std::env::var("ORB_SERVER").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("ORB_TOKEN").unwrap_or_default();
    let local = std::env::var("ORB_LOCAL_DIR").unwrap_or_else(|_| ".orb-device".into());
    let client = Client::connect(&server, token)?
        .with_local(&local)?
        .with_execution(Execution::Auto)
        .with_timeout(std::time::Duration::from_secs(5));

    let key = format!("readings/{room}");
    match client.kv_put(ns, &key, &json!(celsius)).await {
        Ok(_) => println!("{ns}/{key} = {celsius} (on {server})"),
        Err(e) if e.is_unreachable() => {
            client
                .local()
                .expect("opened")
                .kv_put(ns, &key, &json!(celsius))
                .await?;
            println!("{ns}/{key} = {celsius} (offline: kept in {local})");
        }
        Err(e) => return Err(e),
    }

    if let Some(setpoint) = setpoint {
        // The firmware the device carries (runs offline too), or the
        // vendor's alias (follows firmware updates; needs the node).
        let function: FunctionRef = match &firmware {
            Some(path) => path.into(),
            None => "thermostat".into(),
        };
        let inv = client
            .call(function, "decide")
            .param("setpoint", &setpoint)
            .namespace(ns)
            .invoke()
            .await?;
        let furnace = inv.result.as_str().unwrap_or("?");
        let place = if inv.local { "locally" } else { "on the node" };
        println!(
            "furnace: {furnace} (decided {place}, {} us)",
            inv.duration_us
        );
    }
    Ok(())
}
