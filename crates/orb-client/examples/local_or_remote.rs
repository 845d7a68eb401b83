//! The same call three ways: on a node, in this process, and "node if
//! reachable, else here".
//!
//! ```text
//! cargo run -p orb-client --example local_or_remote -- build/guests/calc.wasm
//! ORB_SERVER=http://127.0.0.1:7070 ORB_TOKEN=$(cat .orb/admin.token) \
//!   cargo run -p orb-client --example local_or_remote -- build/guests/calc.wasm
//! ```

use orb_client::{Client, Execution};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize)]
struct Add {
    a: i32,
    b: i32,
}

#[derive(Deserialize)]
struct Summary {
    count: u32,
    mean: f64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("build/guests/calc.wasm".into()),
    );
    let server = std::env::var("ORB_SERVER").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("ORB_TOKEN").unwrap_or_default();
    let dir = std::env::temp_dir().join("orb-example-local");
    let client = Client::connect(&server, token)?.with_local(&dir)?;

    // In this process: no server needed.
    let sum: i32 = client
        .call(&path, "add")
        .params(&Add { a: 2, b: 40 })
        .execution(Execution::Local)
        .send()
        .await?;
    println!("local: add = {sum}");

    // On the node when it answers, else here.
    let inv = client
        .call(&path, "stats")
        .param("values", &[1.0, 2.0, 6.0])
        .execution(Execution::Auto)
        .invoke()
        .await?;
    let s: Option<Summary> = serde_json::from_value(inv.result)?;
    let place = if inv.local { "locally" } else { "on the node" };
    match s {
        Some(s) => println!("auto ({place}): count {} mean {}", s.count, s.mean),
        None => println!("auto ({place}): no values"),
    }

    // Remote only: a typed error when the node is down.
    match client
        .call(&path, "add")
        .params(&Add { a: 1, b: 1 })
        .execution(Execution::Remote)
        .send::<i32>()
        .await
    {
        Ok(n) => println!("remote: add = {n} (uploaded {} time(s))", client.uploads()),
        Err(e) => println!("remote: {e} (unreachable: {})", e.is_unreachable()),
    }
    Ok(())
}
