//! Seed 000 §7.1, the smart-home thermostat, end to end with the SDK against
//! two real nodes: the vendor's, and later the user's own.
//!
//! Devices (room sensors, the thermostat) hold public tokens for the
//! namespace named after the home network and write readings; a
//! namespace-change trigger runs the decision function (through the alias
//! `thermostat`) and writes `furnace`. A firmware update is a new hash the
//! vendor whitelists and points the alias at. Then the vendor disappears:
//! the user exports the namespace, starts their own node, creates an
//! account, imports it, registers the same bytes (same hashes), whitelists
//! them, mints new device tokens and re-points the devices; the furnace
//! logic keeps working there with the vendor's node gone.

mod common;
use common::*;
use orb_client::{Client, ErrorCode, Execution, FunctionId};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NETWORK: &str = "7f3a9c";
const SETPOINT: f64 = 20.0;

fn namespace() -> String {
    format!("home-{NETWORK}")
}

/// The vendor's (or user's) side: alias, whitelist, trigger and rule.
async fn install(owner: &Client, ns: &str, firmware: &FunctionId) {
    owner.set_alias("thermostat", firmware).await.unwrap();
    owner
        .set_whitelist(ns, &[firmware.to_string()])
        .await
        .unwrap();
    owner
        .request_json(
            Method::PUT,
            "/v1/triggers/reading",
            Some(&json!({"namespace": ns, "prefix": "readings/"})),
        )
        .await
        .unwrap();
    owner
        .request_json(
            Method::PUT,
            "/v1/rules/decide",
            Some(
                &json!({"trigger": "reading", "function": "thermostat", "export": "decide",
                         "params": {"setpoint": SETPOINT}, "namespace": ns, "write_to": "furnace"}),
            ),
        )
        .await
        .unwrap();
}

/// A device's token: read-write on the home's namespace, nothing else.
async fn device_token(owner: &Client, ns: &str) -> String {
    let t = owner
        .mint_token(&json!({"namespaces": {ns: "rw"}, "expires": "365d"}))
        .await
        .unwrap();
    t["token"].as_str().unwrap().to_string()
}

/// A room sensor reports (what `examples/thermostat_sensor.rs` does).
async fn report(sensor: &Client, ns: &str, room: &str, celsius: f64) {
    sensor
        .kv_put(ns, &format!("readings/{room}"), &json!(celsius))
        .await
        .unwrap();
}

/// Waits until the rule has run `n` times with `firmware` and the furnace
/// shows `want`.
async fn wait_furnace(owner: &Client, ns: &str, firmware: &FunctionId, n: usize, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = owner
            .list_activations(Some(firmware), 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a["rule"] == "decide" && a["status"] == "succeeded")
            .count();
        let furnace = owner.kv_get(ns, "furnace").await.ok();
        if runs >= n && furnace.as_ref() == Some(&json!(want)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "furnace {furnace:?} after {runs} runs of {firmware}; want {want:?} after {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The thermostat asks directly (synchronously) what the furnace should do.
async fn ask(thermostat: &Client, ns: &str) -> (String, bool) {
    let inv = thermostat
        .call("thermostat", "decide")
        .param("setpoint", &SETPOINT)
        .namespace(ns)
        .invoke()
        .await
        .unwrap();
    (inv.result.as_str().unwrap().to_string(), inv.local)
}

#[tokio::test]
async fn thermostat_firmware_update_and_the_vendor_disappearing() {
    let ns = namespace();
    let v1 = guest("thermostat");
    let v2 = guest("thermostat-v2");
    let (h1, h2) = (FunctionId::of(&v1), FunctionId::of(&v2));
    assert_ne!(h1, h2);

    // --- The vendor's node and account.
    let vendor_node = Server::start(&[]);
    let admin = Client::connect(&vendor_node.url, &vendor_node.token).unwrap();
    let acct = admin.create_account("acme-thermostats").await.unwrap();
    let vendor = Client::connect(&vendor_node.url, acct["token"].as_str().unwrap()).unwrap();
    assert_eq!(vendor.deploy(&v1).await.unwrap(), h1);
    install(&vendor, &ns, &h1).await;

    // --- The devices, shipped with public tokens.
    let vendor_sensor_token = device_token(&vendor, &ns).await;
    let sensor = Client::connect(&vendor_node.url, &vendor_sensor_token).unwrap();
    let local_dir = tempfile::tempdir().unwrap();
    let thermostat = Client::connect(&vendor_node.url, device_token(&vendor, &ns).await)
        .unwrap()
        .with_local(local_dir.path())
        .unwrap()
        .with_execution(Execution::Auto);

    report(&sensor, &ns, "kitchen", 21.5).await;
    wait_furnace(&vendor, &ns, &h1, 1, "off").await;
    report(&sensor, &ns, "hall", 18.0).await;
    wait_furnace(&vendor, &ns, &h1, 2, "on").await;
    report(&sensor, &ns, "hall", 22.0).await;
    wait_furnace(&vendor, &ns, &h1, 3, "off").await;
    assert_eq!(ask(&thermostat, &ns).await, ("off".into(), false));

    // --- Firmware update: the vendor ships v2. Until it is whitelisted,
    // devices may not run it against the home's namespace.
    assert_eq!(vendor.deploy(&v2).await.unwrap(), h2);
    let e = thermostat
        .call(&v2, "decide")
        .param("setpoint", &SETPOINT)
        .namespace(&ns)
        .invoke()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CodeNotWhitelisted), "{e}");
    // The vendor whitelists it and switches the alias.
    vendor
        .set_whitelist(&ns, &[h1.to_string(), h2.to_string()])
        .await
        .unwrap();
    vendor.set_alias("thermostat", &h2).await.unwrap();
    let version: String = thermostat
        .call("thermostat", "version")
        .namespace(&ns)
        .send()
        .await
        .unwrap();
    assert_eq!(version, "v2");
    // v2 has a 0.5 °C band: 19.8 no longer turns the furnace on (v1 would)...
    report(&sensor, &ns, "hall", 19.8).await;
    wait_furnace(&vendor, &ns, &h2, 1, "off").await;
    assert_eq!(ask(&thermostat, &ns).await.0, "off");
    report(&sensor, &ns, "hall", 19.0).await;
    wait_furnace(&vendor, &ns, &h2, 2, "on").await;
    // ...and a running furnace stays on up to 20.5 (v1 would stop at 20).
    report(&sensor, &ns, "hall", 20.3).await;
    wait_furnace(&vendor, &ns, &h2, 3, "on").await;
    assert_eq!(ask(&thermostat, &ns).await, ("on".into(), false));

    // --- The vendor disappears. The user saved the home's namespace first
    // (a device token may read it), then the node is gone.
    let saved = thermostat.ns_export(&ns).await.unwrap();
    assert_eq!(saved["keys"]["readings/hall"], json!(20.3));
    assert_eq!(saved["keys"]["furnace"], json!("on"));
    assert!(vendor_node.stop().success());

    // Offline, the thermostat still decides: Auto runs the firmware it
    // carries in-process, with its own reading in its local namespace.
    let e = thermostat
        .call("thermostat", "decide")
        .param("setpoint", &SETPOINT)
        .namespace(&ns)
        .invoke()
        .await
        .unwrap_err();
    assert!(e.is_unreachable(), "an alias cannot run locally: {e:?}");
    let offline = thermostat
        .call(&v2, "decide")
        .param("setpoint", &SETPOINT)
        .namespace(&ns)
        .set("readings/thermostat", &17.0)
        .invoke()
        .await
        .unwrap();
    assert!(offline.local);
    assert_eq!(offline.result, json!("on"));

    // --- The user's own node, account, namespace and functions.
    let user_node = Server::start(&[]);
    let user_admin = Client::connect(&user_node.url, &user_node.token).unwrap();
    let me = user_admin.create_account("me").await.unwrap();
    let user = Client::connect(&user_node.url, me["token"].as_str().unwrap()).unwrap();
    let imported = user.ns_import(&ns, &saved).await.unwrap();
    assert_eq!(imported["imported"], 3, "{imported}");
    // The same bytes are the same functions: the hashes the vendor used.
    assert_eq!(user.deploy(&v1).await.unwrap(), h1);
    assert_eq!(user.deploy(&v2).await.unwrap(), h2);
    install(&user, &ns, &h2).await;
    assert_eq!(user.get_whitelist(&ns).await.unwrap(), [h2.to_string()]);

    // The vendor's device tokens mean nothing here (another root key).
    let old = Client::connect(&user_node.url, &vendor_sensor_token).unwrap();
    let e = old
        .kv_put(&ns, "readings/hall", &json!(1.0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TokenInvalid), "{e}");

    // Re-point the devices: the user's URL and new tokens.
    let sensor = Client::connect(&user_node.url, device_token(&user, &ns).await).unwrap();
    let thermostat = Client::connect(&user_node.url, device_token(&user, &ns).await)
        .unwrap()
        .with_local_runner(thermostat.local().unwrap().clone())
        .with_execution(Execution::Auto);
    assert_eq!(ask(&thermostat, &ns).await, ("on".into(), false));
    report(&sensor, &ns, "hall", 23.0).await;
    wait_furnace(&user, &ns, &h2, 1, "off").await;
    report(&sensor, &ns, "kitchen", 17.5).await;
    wait_furnace(&user, &ns, &h2, 2, "on").await;
    assert_eq!(ask(&thermostat, &ns).await, ("on".into(), false));
    let furnace: Value = user.kv_get(&ns, "furnace").await.unwrap();
    assert_eq!(furnace, json!("on"));
    // The offline reading stayed on the device (no sync).
    assert_eq!(
        user.kv_get(&ns, "readings/thermostat")
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::KeyNotFound)
    );
}
