//! Events and composition against a real `orb serve`: triggers and rules
//! (fired by POST, by a schedule, by namespace changes — the thermostat
//! chain of seed 000), sequences, and the Kappa API of seed 004.

mod common;
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The final activation `id` (long-polls while it is queued or running).
async fn final_activation(s: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, a) = s.get(&format!("/v1/activations/{id}?wait=5s")).await;
        assert_eq!(st, 200, "{a}");
        if a["status"] == "succeeded" || a["status"] == "failed" {
            return a;
        }
        assert!(Instant::now() < deadline, "activation {id} stuck: {a}");
    }
}

async fn put(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    s.put_json_as(path, body, Some(&s.token)).await
}

/// Creates a trigger or rule (`PUT`, answered 201).
async fn create(s: &Server, path: &str, body: &Value) -> Value {
    let (st, v) = put(s, path, body).await;
    assert_eq!(st, 201, "PUT {path}: {v}");
    v
}

/// Polls `key` in `ns` until it holds `want`.
async fn wait_value(s: &Server, ns: &str, key: &str, want: &Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, v) = s.get(&format!("/v1/namespaces/{ns}/keys/{key}")).await;
        if st == 200 && &v == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{ns}/{key}` is {st} {v}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn rules_run_when_a_trigger_is_fired_by_post_or_by_a_schedule() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;

    let (st, t) = put(&s, "/v1/triggers/tick", &json!({"description": "test"})).await;
    assert_eq!(st, 201, "{t}");
    create(
        &s,
        "/v1/rules/twice",
        &json!({"trigger": "tick", "function": f, "export": "double"}),
    )
    .await;
    // Static parameters win over the payload's.
    create(
        &s,
        "/v1/rules/answer",
        &json!({"trigger": "tick", "function": f, "export": "inc", "params": {"n": 41}}),
    )
    .await;

    // Parameters the export does not take are left out of the payload.
    let (st, fired) = s
        .post_json("/v1/triggers/tick", &json!({"n": 5, "source": "test"}))
        .await;
    assert_eq!(st, 202, "{fired}");
    let firing = fired["activation"].as_str().unwrap().to_string();
    let rules = fired["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{fired}");
    let mut results = std::collections::BTreeMap::new();
    for r in rules {
        let a = final_activation(&s, r["activation"].as_str().unwrap()).await;
        assert_eq!(a["status"], "succeeded", "{a}");
        assert_eq!(a["trigger"], "tick");
        assert_eq!(a["cause"], firing.as_str());
        results.insert(a["rule"].as_str().unwrap().to_string(), a["result"].clone());
    }
    assert_eq!(results["twice"], json!({"n": 10}));
    assert_eq!(results["answer"], json!({"n": 42}));
    let (_, a) = s.get(&format!("/v1/activations/{firing}")).await;
    assert_eq!(a["trigger"], "tick");
    assert_eq!(a["status"], "succeeded");
    assert!(a.get("function").is_none(), "{a}");
    assert_eq!(a["caused"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["result"]["payload"]["n"], 5);
    // `orb act ls` names the trigger on the firing's row (it runs no export).
    let (ok, out, err) = orb_t(&s.token, &["act", "ls", "--server", &s.url]);
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&firing))
        .expect("firing listed");
    assert!(row.contains("trigger tick"), "{out}");

    // Who may fire: a public token only with the trigger in its grant.
    let plain = s.mint(&json!({})).await;
    let (st, e) = s
        .post_json_as("/v1/triggers/tick", &json!({"n": 1}), Some(&plain))
        .await;
    assert_error(st, &e, 403, "permission_denied");
    let device = s.mint(&json!({"triggers": ["tick"]})).await;
    let (st, ok) = s
        .post_json_as("/v1/triggers/tick", &json!({"n": 1}), Some(&device))
        .await;
    assert_eq!(st, 202, "{ok}");
    // …and may not make triggers or rules.
    let (st, e) = s
        .put_json_as("/v1/triggers/mine", &json!({}), Some(&device))
        .await;
    assert_error(st, &e, 403, "permission_denied");

    // Refusals.
    let (st, e) = s.post_json("/v1/triggers/nope", &json!({})).await;
    assert_error(st, &e, 404, "trigger_not_found");
    let (st, e) = s.post_json("/v1/triggers/tick", &json!([1, 2])).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = put(
        &s,
        "/v1/rules/bad",
        &json!({"trigger": "tick", "function": f, "export": "double", "params": {"m": 1}}),
    )
    .await;
    assert_error(st, &e, 400, "invalid_params");
    let (st, e) = put(
        &s,
        "/v1/rules/bad",
        &json!({"trigger": "nope", "function": f, "export": "double"}),
    )
    .await;
    assert_error(st, &e, 404, "trigger_not_found");
    let (st, e) = put(
        &s,
        "/v1/rules/bad",
        &json!({"trigger": "tick", "function": f, "export": "nope"}),
    )
    .await;
    assert_error(st, &e, 404, "export_not_found");
    let (st, e) = put(&s, "/v1/triggers/Bad%20Name", &json!({})).await;
    assert_error(st, &e, 400, "invalid_name");

    // A schedule as the event source: each tick fires the trigger. Its
    // payload has no `n`, so `twice` is refused (listed in the firing) and
    // `answer` runs on its static parameter.
    let (st, sched) = s
        .post_json(
            "/v1/schedules",
            &json!({"trigger": "tick", "every": "1h", "run_now": true}),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    let id = sched["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let (_, shown) = s.get(&format!("/v1/schedules/{id}")).await;
        if shown["state"]["runs"].as_u64() >= Some(1) {
            break shown;
        }
        assert!(Instant::now() < deadline, "no tick: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let tick = shown["state"]["last_activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{tick}")).await;
    assert_eq!(a["trigger"], "tick", "{a}");
    assert_eq!(a["schedule"], id.as_str());
    let listed = a["result"]["rules"].as_array().unwrap();
    let twice = listed.iter().find(|r| r["rule"] == "twice").unwrap();
    assert_eq!(twice["error"]["code"], "invalid_params", "{a}");
    let answer = listed.iter().find(|r| r["rule"] == "answer").unwrap();
    let ran = final_activation(&s, answer["activation"].as_str().unwrap()).await;
    assert_eq!(ran["result"], json!({"n": 42}));
    // A trigger schedule carries no call fields; its trigger must exist.
    let (st, e) = s
        .post_json(
            "/v1/schedules",
            &json!({"trigger": "tick", "every": "1h", "function": f}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_schedule");
    let (st, e) = s
        .post_json("/v1/schedules", &json!({"trigger": "nope", "every": "1h"}))
        .await;
    assert_error(st, &e, 404, "trigger_not_found");

    // Listing, and deleting a trigger takes its rules along.
    let (_, shown) = s.get("/v1/triggers/tick").await;
    assert_eq!(shown["rules"].as_array().unwrap().len(), 2, "{shown}");
    let (_, listed) = s.get("/v1/rules").await;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 2, "{listed}");
    let rb = s.http.delete(format!("{}/v1/triggers/tick", s.url));
    let (st, out) = decode(rb.header("authorization", s.bearer()).send().await.unwrap()).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["rules_deleted"], json!(["answer", "twice"]));
    let (st, e) = s.get("/v1/rules/twice").await;
    assert_error(st, &e, 404, "rule_not_found");
}

/// Seed 000's thermostat: devices write readings into the home's
/// namespace; a change under `readings/` fires the decision function, whose
/// answer is written back to `furnace`.
#[tokio::test]
async fn a_namespace_change_drives_the_thermostat_decision() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;
    create(
        &s,
        "/v1/triggers/reading",
        &json!({"namespace": "home", "prefix": "readings/"}),
    )
    .await;
    // A rule writing under its own trigger's prefix would fire forever.
    let (st, e) = put(
        &s,
        "/v1/rules/loop",
        &json!({"trigger": "reading", "function": f, "export": "decide",
                "params": {"setpoint": 20.0}, "namespace": "home", "write_to": "readings/x"}),
    )
    .await;
    assert_error(st, &e, 400, "invalid_request");
    create(
        &s,
        "/v1/rules/decide",
        &json!({"trigger": "reading", "function": f, "export": "decide",
                "params": {"setpoint": 20.0}, "namespace": "home", "write_to": "furnace"}),
    )
    .await;
    // A second rule sees the change itself (key, deleted) from the payload.
    create(
        &s,
        "/v1/rules/log",
        &json!({"trigger": "reading", "function": f, "export": "note-change", "namespace": "log"}),
    )
    .await;

    // The devices: a public token that may write readings.
    let device = s.mint(&json!({"namespaces": {"home": "rw"}})).await;
    let write = |key: &'static str, value: f64| {
        let (s, device) = (&s, device.clone());
        async move {
            let r = s
                .http
                .put(format!("{}/v1/namespaces/home/keys/readings/{key}", s.url))
                .header("authorization", format!("Bearer {device}"))
                .json(&json!(value))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    };
    write("kitchen", 21.5).await;
    wait_value(&s, "home", "furnace", &json!("off")).await;
    write("hall", 18.0).await;
    wait_value(&s, "home", "furnace", &json!("on")).await;
    write("hall", 22.0).await;
    wait_value(&s, "home", "furnace", &json!("off")).await;
    // Writing `furnace` itself fires nothing (outside the prefix).
    let rb = s
        .http
        .delete(format!(
            "{}/v1/namespaces/home/keys/readings/kitchen",
            s.url
        ))
        .header("authorization", s.bearer());
    assert!(rb.send().await.unwrap().status().is_success());
    // The log rule ran once per change (in whatever order the queue ran them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let (_, keys) = s.get("/v1/namespaces/log/keys?prefix=seen/").await;
        let keys = keys["keys"].as_array().unwrap().clone();
        if keys.len() >= 4 {
            break keys;
        }
        assert!(Instant::now() < deadline, "log has {keys:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut notes = Vec::new();
    for k in &seen {
        let key = k.as_str().or_else(|| k["key"].as_str()).unwrap();
        let (_, v) = s.get(&format!("/v1/namespaces/log/keys/{key}")).await;
        notes.push(v.as_str().unwrap().to_string());
    }
    notes.sort();
    assert_eq!(
        notes,
        [
            "readings/hall set",
            "readings/hall set",
            "readings/kitchen deleted",
            "readings/kitchen set"
        ]
    );
    // The decision's activations say where they came from.
    let acts = s.activations(&f).await;
    let decided: Vec<&Value> = acts.iter().filter(|a| a["rule"] == "decide").collect();
    assert!(decided.len() >= 3, "{acts:?}");
    for a in &decided {
        assert_eq!(a["trigger"], "reading");
        let cause = a["cause"].as_str().unwrap();
        let (_, firing) = s.get(&format!("/v1/activations/{cause}")).await;
        assert_eq!(firing["result"]["payload"]["namespace"], "home", "{firing}");
        assert!(
            firing["result"]["payload"]["key"]
                .as_str()
                .unwrap()
                .starts_with("readings/")
        );
    }
    // Four changes under the prefix, four firings, no more (the furnace
    // and log writes fire nothing).
    let firings = s.metric("orb_trigger_firings_total").await;
    assert_eq!(firings, 4.0);
}

/// A rule whose function writes under its own trigger's prefix (from the
/// guest, not `write_to`, so it cannot be refused up front): the trigger
/// does not fire on its own rule's changes, so one outside write runs the
/// rule once instead of forever.
#[tokio::test]
async fn a_rule_writing_under_its_own_trigger_prefix_runs_once() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;
    create(
        &s,
        "/v1/triggers/seen",
        &json!({"namespace": "notes", "prefix": "seen/"}),
    )
    .await;
    // note-change writes `seen/NNNN`: under the trigger's own prefix.
    create(
        &s,
        "/v1/rules/note",
        &json!({"trigger": "seen", "function": f, "export": "note-change", "namespace": "notes"}),
    )
    .await;
    let rb = s
        .http
        .put(format!("{}/v1/namespaces/notes/keys/seen/outside", s.url))
        .header("authorization", s.bearer())
        .json(&json!("by hand"));
    assert!(rb.send().await.unwrap().status().is_success());
    // The rule's own write appears…
    wait_value(&s, "notes", "seen/0001", &json!("seen/outside set")).await;
    // …and fires nothing more: a loop would add a key every few ms.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, keys) = s.get("/v1/namespaces/notes/keys?prefix=seen/").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    assert_eq!(s.metric("orb_trigger_firings_total").await, 1.0);
    // An outside write still fires it.
    let rb = s
        .http
        .delete(format!("{}/v1/namespaces/notes/keys/seen/outside", s.url))
        .header("authorization", s.bearer());
    assert!(rb.send().await.unwrap().status().is_success());
    wait_value(&s, "notes", "seen/0001", &json!("seen/outside deleted")).await;
    assert_eq!(s.metric("orb_trigger_firings_total").await, 2.0);
}

#[tokio::test]
async fn rules_of_two_triggers_writing_under_each_others_prefix_do_not_loop() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;
    // `wide` sees every `seen/` key, `narrow` only `seen/0…`; each has a rule
    // running note-change, which writes the next `seen/NNNN` key.
    for (name, prefix) in [("wide", "seen/"), ("narrow", "seen/0")] {
        create(
            &s,
            &format!("/v1/triggers/{name}"),
            &json!({"namespace": "notes", "prefix": prefix}),
        )
        .await;
        create(
            &s,
            &format!("/v1/rules/on-{name}"),
            &json!({"trigger": name, "function": f, "export": "note-change", "namespace": "notes"}),
        )
        .await;
    }
    let rb = s
        .http
        .put(format!("{}/v1/namespaces/notes/keys/seen/outside", s.url))
        .header("authorization", s.bearer());
    assert!(
        rb.json(&json!("by hand"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    // outside → wide's rule writes seen/0001 → narrow's rule writes seen/0002,
    // which wide would fire on again were the chain not remembered.
    wait_value(&s, "notes", "seen/0001", &json!("seen/outside set")).await;
    wait_value(&s, "notes", "seen/0002", &json!("seen/0001 set")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, keys) = s.get("/v1/namespaces/notes/keys?prefix=seen/").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3, "{keys}");
    assert_eq!(s.metric("orb_trigger_firings_total").await, 2.0);
}

#[tokio::test]
async fn a_burst_of_changes_fires_the_trigger_once_per_change_none_dropped() {
    let s = Server::start(&[]);
    create(
        &s,
        "/v1/triggers/bulk",
        &json!({"namespace": "burst", "prefix": "k/"}),
    )
    .await;
    // One import commits 10,000 watched keys (and 10 unwatched) at once:
    // more than any fixed buffer of changes would hold.
    let mut keys = serde_json::Map::new();
    for i in 0..10_000 {
        keys.insert(format!("k/{i:05}"), json!(i));
    }
    for i in 0..10 {
        keys.insert(format!("other/{i}"), json!(i));
    }
    let (st, out) = s
        .post_json("/v1/namespaces/burst/import", &json!({ "keys": keys }))
        .await;
    assert_eq!((st, &out["imported"]), (200, &json!(10_010)), "{out}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let fired = s.metric("orb_trigger_firings_total").await;
        if fired >= 10_000.0 {
            break;
        }
        assert!(Instant::now() < deadline, "only {fired} of 10000 firings");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.metric("orb_trigger_firings_total").await, 10_000.0);
    assert_eq!(s.metric("orb_trigger_backlog").await, 0.0);
}

#[tokio::test]
async fn a_sequence_feeds_each_result_to_the_next_step_and_stops_on_error() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;
    let step = |export: &str| json!({"function": f, "export": export});
    let (st, a) = put(
        &s,
        "/v1/aliases/pipeline",
        &json!({"steps": [step("double"), step("inc"), step("guard")]}),
    )
    .await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["steps"].as_array().unwrap().len(), 3);

    let (st, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "pipeline", "params": {"n": 5}}),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], json!({"n": 11}));
    let seq = out["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{seq}")).await;
    assert_eq!(a["alias"], "pipeline");
    assert_eq!(a["status"], "succeeded");
    let steps = a["caused"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{a}");
    let mut exports = Vec::new();
    for id in steps {
        let (_, step) = s
            .get(&format!("/v1/activations/{}", id.as_str().unwrap()))
            .await;
        assert_eq!(step["cause"], seq);
        exports.push(step["export"].as_str().unwrap().to_string());
    }
    assert_eq!(exports, ["double", "inc", "guard"]);

    // The third step traps: the chain stops there and says so.
    let (st, e) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "pipeline", "params": {"n": 60}}),
        )
        .await;
    let err = assert_error(st, &e, 422, "function_trap");
    assert_eq!(err["details"]["step"], 3, "{e}");
    assert_eq!(err["details"]["sequence"], "pipeline");
    let seq = err["details"]["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{seq}")).await;
    assert_eq!(a["status"], "failed");
    assert_eq!(a["caused"].as_array().unwrap().len(), 3);

    // A step that returns no record cannot feed the next one.
    let (st, _) = put(
        &s,
        "/v1/aliases/flat",
        &json!({"steps": [step("scalar"), step("inc")]}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, e) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "flat", "params": {"n": 1}}),
        )
        .await;
    let err = assert_error(st, &e, 422, "function_bad_result");
    assert_eq!(err["details"]["step"], 1, "{e}");

    // Every step is checked against the caller's token.
    let only_double = s.mint(&json!({"functions": [f]})).await;
    let (st, out) = s
        .post_json_as(
            "/v1/invoke",
            &json!({"function": "pipeline", "params": {"n": 1}}),
            Some(&only_double),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    let other = s.deploy("calc").await;
    let narrow = s.mint(&json!({"functions": [other]})).await;
    let (st, e) = s
        .post_json_as(
            "/v1/invoke",
            &json!({"function": "pipeline", "params": {"n": 1}}),
            Some(&narrow),
        )
        .await;
    let err = assert_error(st, &e, 403, "permission_denied");
    assert_eq!(err["details"]["step"], 1, "{e}");

    // Refusals.
    let (st, e) = put(&s, "/v1/aliases/empty", &json!({"steps": []})).await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = put(&s, "/v1/aliases/typo", &json!({"steps": [step("nope")]})).await;
    assert_error(st, &e, 404, "export_not_found");
    let missing = format!("sha256:{}", "ab".repeat(32));
    let (st, e) = put(
        &s,
        "/v1/aliases/ghost",
        &json!({"steps": [{"function": missing, "export": "x"}]}),
    )
    .await;
    assert_error(st, &e, 404, "function_not_found");
    let (st, e) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "pipeline", "params": {"n": 1}, "async": true}),
        )
        .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, e) = s.call("pipeline", "double", json!({"n": 1})).await;
    assert_error(st, &e, 400, "invalid_request");
    // Pointing the alias at a function again ends the sequence.
    let (st, a) = put(&s, "/v1/aliases/pipeline", &json!({"function": f})).await;
    assert_eq!(st, 200, "{a}");
    assert!(a.get("steps").is_none(), "{a}");
    let (st, out) = s.call("pipeline", "double", json!({"n": 4})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], json!({"n": 8}));
}

async fn kappa_put(s: &Server, body: reqwest::RequestBuilder) -> (u16, Value) {
    decode(
        body.header("authorization", s.bearer())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn kappa_post(s: &Server, r: &str, msg: &Value) -> (u16, Value) {
    s.post_json(&format!("/kappa/{r}"), msg).await
}

/// `GET /kappa/{ref}`: `Some(message)`, or `None` on 204.
async fn kappa_pop(s: &Server, r: &str) -> Option<Value> {
    let resp = s
        .http
        .get(format!("{}/kappa/{r}", s.url))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        204 => None,
        200 => Some(resp.json().await.unwrap()),
        other => panic!("GET /kappa/{r}: {other} {}", resp.text().await.unwrap()),
    }
}

#[tokio::test]
async fn kappa_round_trip_with_state_order_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let bytes = guest("events");

    // Deploy with the component in the body: it has many exports, so the
    // kappa's must be named.
    let (st, e) = kappa_put(
        &s,
        s.http
            .put(format!("{}/kappa", s.url))
            .header("content-type", "application/wasm")
            .body(bytes.clone()),
    )
    .await;
    assert_error(st, &e, 400, "invalid_request");
    let (st, k) = kappa_put(
        &s,
        s.http
            .put(format!("{}/kappa?export=observe", s.url))
            .header("content-type", "application/wasm")
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(st, 201, "{k}");
    let r = k["ref"].as_str().unwrap().to_string();
    let hash = k["function"].as_str().unwrap().to_string();
    // …or by name.
    let (st, k2) = s
        .put_json_as(
            "/kappa",
            &json!({"function": hash, "export": "observe"}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 201, "{k2}");
    let r2 = k2["ref"].as_str().unwrap().to_string();
    assert_ne!(r, r2);

    assert_eq!(kappa_pop(&s, &r).await, None);
    for (i, reading) in [json!({"reading": 10}), json!(20), json!(30.0)]
        .iter()
        .enumerate()
    {
        let (st, out) = kappa_post(&s, &r, reading).await;
        assert_eq!(st, 200, "{out}");
        assert_eq!(out["emitted"], i == 2, "{out}");
    }
    for reading in [40, 50, 60] {
        let (st, out) = kappa_post(&s, &r, &json!(reading)).await;
        assert_eq!(st, 200, "{out}");
    }
    // The other kappa has its own state.
    for _ in 0..3 {
        kappa_post(&s, &r2, &json!(100)).await;
    }
    assert_eq!(
        kappa_pop(&s, &r).await,
        Some(json!({"count": 3, "mean": 20.0}))
    );
    assert_eq!(
        kappa_pop(&s, &r).await,
        Some(json!({"count": 6, "mean": 35.0}))
    );
    assert_eq!(kappa_pop(&s, &r).await, None);
    assert_eq!(
        kappa_pop(&s, &r2).await,
        Some(json!({"count": 3, "mean": 100.0}))
    );

    // Messages sent at once are handled one at a time, in order.
    let one = json!(1);
    let sends = (0..30).map(|_| kappa_post(&s, &r, &one));
    for (st, out) in futures_util::future::join_all(sends).await {
        assert_eq!(st, 200, "{out}");
    }
    let mut counts = Vec::new();
    while let Some(m) = kappa_pop(&s, &r).await {
        counts.push(m["count"].as_u64().unwrap());
    }
    assert_eq!(counts, (9..=36).step_by(3).collect::<Vec<u64>>());

    // State and unread output survive a restart.
    for _ in 0..3 {
        kappa_post(&s, &r, &json!(2)).await;
    }
    assert_eq!(s.stop().code(), Some(0));
    let s = Server::start_in(dir.path(), &[]);
    let (_, listed) = s.get("/kappa").await;
    let kappas = listed["kappas"].as_array().unwrap();
    assert_eq!(kappas.len(), 2, "{listed}");
    let mine = kappas.iter().find(|k| k["ref"] == r.as_str()).unwrap();
    assert_eq!(mine["outport"], 1, "{listed}");
    let m = kappa_pop(&s, &r).await.unwrap();
    assert_eq!(m["count"], 39, "{m}");

    // Refusals: a bad message, a token that may not use it, a public
    // token deploying, an unknown ref.
    let (st, e) = kappa_post(&s, &r, &json!("warm")).await;
    assert_error(st, &e, 400, "invalid_params");
    let other = s.deploy("calc").await;
    let narrow = s.mint(&json!({"functions": [other]})).await;
    let (st, e) = s
        .post_json_as(&format!("/kappa/{r}"), &json!(1), Some(&narrow))
        .await;
    // A kappa whose code the token may not run is, to it, not there.
    assert_error(st, &e, 404, "kappa_not_found");
    let allowed = s.mint(&json!({"functions": [hash]})).await;
    let (st, out) = s
        .post_json_as(&format!("/kappa/{r}"), &json!(1), Some(&allowed))
        .await;
    assert_eq!(st, 200, "{out}");
    let (st, e) = s
        .put_json_as(
            "/kappa",
            &json!({"function": hash, "export": "observe"}),
            Some(&allowed),
        )
        .await;
    assert_error(st, &e, 403, "permission_denied");
    let (st, e) = kappa_post(&s, "nope", &json!(1)).await;
    assert_error(st, &e, 404, "kappa_not_found");

    // Delete: the kappa, its outport and its state are gone.
    let ns = mine["namespace"].as_str().unwrap().to_string();
    let (_, keys) = s.get(&format!("/v1/namespaces/{ns}/keys")).await;
    assert!(!keys["keys"].as_array().unwrap().is_empty(), "{keys}");
    let resp = s
        .http
        .delete(format!("{}/kappa/{r}", s.url))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (st, e) = s.get(&format!("/kappa/{r}")).await;
    assert_error(st, &e, 404, "kappa_not_found");
    let (_, keys) = s.get(&format!("/v1/namespaces/{ns}/keys")).await;
    assert!(keys["keys"].as_array().unwrap().is_empty(), "{keys}");
    let (_, listed) = s.get("/kappa").await;
    assert_eq!(listed["kappas"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_cli_manages_triggers_rules_sequences_and_kappas() {
    let s = Server::start(&[]);
    let f = s.deploy("events").await;
    let orb = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--server", &s.url]);
        let (ok, out, err) = orb_t(&s.token, &all);
        assert!(ok, "orb {args:?}: {err}");
        out
    };
    // Each change says what it did.
    assert_eq!(orb(&["trigger", "create", "tick"]).trim(), "tick");
    let out = orb(&[
        "trigger", "create", "seen", "--ns", "notes", "--prefix", "seen/",
    ]);
    assert_eq!(out.trim(), "seen  on changes in notes under `seen/`");
    orb(&["rule", "create", "twice", "--trigger", "tick", &f, "double"]);
    let out = orb(&["trigger", "show", "tick"]);
    assert!(out.contains("twice  tick →"), "{out}");
    let firing = orb(&["trigger", "fire", "tick", "n:=21"]);
    let (_, fired) = s.get(&format!("/v1/activations/{}", firing.trim())).await;
    let rule_act = fired["caused"][0].as_str().unwrap().to_string();
    let a = final_activation(&s, &rule_act).await;
    assert_eq!(a["result"], json!({"n": 42}), "{a}");
    let listed: Value = serde_json::from_str(&orb(&["rule", "ls", "--json"])).unwrap();
    assert_eq!(listed["rules"][0]["name"], "twice");
    assert_eq!(orb(&["rule", "rm", "twice"]).trim(), "deleted rule twice");
    assert_eq!(
        orb(&["trigger", "rm", "tick"]).trim(),
        "deleted trigger tick and its rules"
    );
    orb(&["trigger", "rm", "seen"]);
    let (_, t) = s.get("/v1/triggers").await;
    assert_eq!(t["triggers"], json!([]));

    let out = orb(&[
        "alias",
        "set",
        "pipe",
        "--step",
        &format!("{f}:double"),
        "--step",
        &format!("{f}:inc"),
    ]);
    assert!(out.contains("sequence"), "{out}");
    let (st, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "pipe", "params": {"n": 2}}),
        )
        .await;
    assert_eq!((st, &out["result"]), (200, &json!({"n": 5})), "{out}");

    let r = orb(&["kappa", "deploy", &f, "--export", "observe"]);
    let r = r.trim();
    for (v, said) in [
        ("1", "no output"),
        ("2", "no output"),
        ("3", "output on the outport"),
    ] {
        let out = orb(&["kappa", "send", r, v]);
        assert!(out.trim_end().ends_with(&format!("({said})")), "{out}");
    }
    let got: Value = serde_json::from_str(&orb(&["kappa", "recv", r])).unwrap();
    assert_eq!(got, json!({"count": 3, "mean": 2.0}));
    let (ok, _, err) = orb_t(&s.token, &["kappa", "recv", r, "--server", &s.url]);
    assert!(ok && err.contains("empty"), "{err}");
    let out = orb(&["kappa", "ls"]);
    assert!(out.contains(r), "{out}");
    orb(&["kappa", "rm", r]);
}
