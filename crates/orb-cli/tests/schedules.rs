//! Schedules, asynchronous calls and aliases, against a real `orb serve`.

mod common;
use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn kv_value(s: &Server, ns: &str, key: &str) -> Option<Value> {
    let (st, v) = s.get(&format!("/v1/namespaces/{ns}/keys/{key}")).await;
    (st == 200).then_some(v)
}

/// Polls until `key` holds a number ≥ `want`; returns the values seen.
async fn watch_until(s: &Server, key: &str, want: u64, seen: &mut Vec<u64>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = kv_value(s, "sched", key).await.and_then(|v| v.as_u64())
            && seen.last() != Some(&v)
        {
            seen.push(v);
        }
        if seen.last().is_some_and(|v| *v >= want) {
            return;
        }
        assert!(Instant::now() < deadline, "`{key}` reached only {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_one_second_schedule_writes_its_key_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let kv = s.deploy("kv").await;
    let (st, sched) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "sched", "write_to": "last", "every": "1s"}),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    let id = sched["id"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    watch_until(&s, "last", 2, &mut seen).await;
    assert_eq!(s.stop().code(), Some(0));

    let s = Server::start_in(dir.path(), &[]);
    // What the key held when the node came back (a tick may have landed
    // after the last poll before the stop): two more writes must follow.
    let at_restart = kv_value(&s, "sched", "last")
        .await
        .and_then(|v| v.as_u64())
        .unwrap();
    let mut after = vec![at_restart];
    watch_until(&s, "last", at_restart + 2, &mut after).await;
    seen.extend(after);
    assert!(seen.len() >= 4, "{seen:?}");

    let (_, shown) = s.get(&format!("/v1/schedules/{id}")).await;
    let state = &shown["state"];
    assert!(state["runs"].as_u64().unwrap() >= 2, "{shown}");
    assert_eq!(state["last_status"], "succeeded", "{shown}");
    assert!(state["next_run"].is_string(), "{shown}");
    assert!(
        shown.get("call").is_none(),
        "the stored claims are not shown"
    );
    let last = state["last_activation"].as_str().unwrap();
    let (_, act) = s.get(&format!("/v1/activations/{last}")).await;
    assert_eq!(act["schedule"], id.as_str(), "{act}");

    // Listed, then deleted: no more ticks.
    let (_, list) = s.get("/v1/schedules").await;
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
    let r = s
        .http
        .delete(format!("{}/v1/schedules/{id}", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, body) = s.get(&format!("/v1/schedules/{id}")).await;
    assert_error(st, &body, 404, "schedule_not_found");
}

#[tokio::test]
async fn a_failing_schedule_stays_visible_with_its_error() {
    let s = Server::start(&[]);
    let bad = s.deploy("misbehave").await;
    let (st, sched) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": bad, "export": "boom", "params": {"msg": "tick failed"},
                    "every": "1s", "run_now": true}),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    let id = sched["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let (_, shown) = s.get(&format!("/v1/schedules/{id}")).await;
        if shown["state"]["failures"].as_u64() >= Some(2) {
            break shown;
        }
        assert!(Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(shown["state"]["last_status"], "failed");
    assert_eq!(
        shown["state"]["last_error"]["code"], "function_trap",
        "{shown}"
    );
    assert!(
        shown["state"]["next_run"].is_string(),
        "still scheduled: {shown}"
    );
}

#[tokio::test]
async fn schedule_requests_are_checked_against_the_token() {
    let s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    s.whitelist("feed", &[&kv]).await;
    let device = s
        .mint(&json!({"namespaces": {"feed": "rw"},
                             "schedules": {"max": 1, "min_interval": "30s"}}))
        .await;
    let no_schedules = s.mint(&json!({"namespaces": {"feed": "rw"}})).await;
    // A limit with a field Orb does not know is refused, not half-read.
    for body in [
        json!({"schedules": {"max": 1, "min_interval": "30s", "burst": 3}}),
        json!({"rate": {"count": 5, "per": "60s", "burst": 3}}),
    ] {
        let (st, v) = s.post_json("/v1/tokens", &body).await;
        let e = assert_error(st, &v, 400, "invalid_request");
        assert!(e["message"].as_str().unwrap().contains("burst"), "{v}");
    }
    let spec = |every: &str| {
        json!({"function": kv, "export": "incr", "params": {"delta": 1},
               "namespace": "feed", "write_to": "pending", "every": every})
    };
    let (st, body) = s
        .post_json_as("/v1/schedules", &spec("10s"), Some(&device))
        .await;
    let e = assert_error(st, &body, 403, "schedule_too_frequent");
    assert_eq!(e["details"]["min_interval"], "30s");
    let (st, body) = s
        .post_json_as("/v1/schedules", &spec("30s"), Some(&device))
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = s
        .post_json_as("/v1/schedules", &spec("1m"), Some(&device))
        .await;
    assert_error(st, &body, 403, "schedule_limit_reached");
    let (st, body) = s
        .post_json_as("/v1/schedules", &spec("1m"), Some(&no_schedules))
        .await;
    assert_error(st, &body, 403, "permission_denied");

    // Bad timing is the caller's error, with its own code.
    for bad in [
        json!({"every": "often"}),
        json!({"every": "1s", "cron": "* * * * *"}),
        json!({"cron": "not a cron"}),
        json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
        json!({"every": "100ms"}),
        json!({}),
    ] {
        let mut body = json!({"function": kv, "export": "incr", "params": {"delta": 1},
                              "namespace": "feed"});
        for (k, v) in bad.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (st, out) = s.post_json("/v1/schedules", &body).await;
        assert_error(st, &out, 400, "invalid_schedule");
    }
    // A token narrowed to calls cannot make schedules (`schedules.write`).
    let calls_only = orb_auth::attenuate(
        &device,
        &orb_auth::Narrowing {
            operations: Some(vec!["invoke".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    let (st, body) = s
        .post_json_as("/v1/schedules", &spec("1m"), Some(&calls_only))
        .await;
    assert_error(st, &body, 403, "permission_denied");
    // A bad `write_to` key is refused when the schedule is made, not at each tick.
    let (st, body) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "feed", "write_to": "", "every": "1m"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_key");
    // A cron schedule in a time zone is accepted and has a next run.
    let (st, body) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "feed", "cron": "*/5 * * * *", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert!(body["state"]["next_run"].is_string(), "{body}");
    // Parameters are checked when the schedule is made, not at its first tick.
    let (st, body) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": kv, "export": "incr", "params": {"delta": "x"}, "every": "1m"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_params");
}

#[tokio::test]
async fn an_async_call_queued_across_a_restart_runs_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orb.toml");
    std::fs::write(&config, "async_per_account = 1\ntimeout_ms = 1500\n").unwrap();
    let cfg = config.to_str().unwrap();
    let s = Server::start_in(dir.path(), &["--config", cfg]);
    let slow = s.deploy("misbehave").await;
    let kv = s.deploy("kv").await;
    // The account runs one async call at a time: the spin (until its
    // timeout) holds the slot, the increment waits behind it.
    let (st, first) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": slow, "export": "spin", "async": true}),
        )
        .await;
    assert_eq!((st, &first["status"]), (202, &json!("queued")), "{first}");
    let (st, queued) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "once", "async": true}),
        )
        .await;
    assert_eq!(st, 202, "{queued}");
    let id = queued["activation"].as_str().unwrap().to_string();
    let (_, a) = s.get(&format!("/v1/activations/{id}")).await;
    assert_eq!(a["status"], "queued", "{a}");
    // Stop while the spin runs: it finishes, the increment stays queued.
    s.wait_in_flight(1.0).await;
    assert_eq!(s.stop().code(), Some(0));
    let restarted = std::time::SystemTime::now();
    let s = Server::start_in(dir.path(), &["--config", cfg]);
    let (_, a) = s.get(&format!("/v1/activations/{id}?wait=10s")).await;
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(
        (&a["result"], &a["attempts"]),
        (&json!(1), &json!(1)),
        "{a}"
    );
    // It ran after the restart: its run started after the node came back.
    let ran = humantime::parse_rfc3339(a["start"].as_str().unwrap()).unwrap();
    assert!(ran >= restarted, "ran at {a} before the restart");
    assert_eq!(kv_value(&s, "once", "atomic").await, Some(json!(1)));
    let first = first["activation"].as_str().unwrap();
    let (_, f) = s.get(&format!("/v1/activations/{first}")).await;
    assert_eq!(f["error"]["code"], "function_timeout", "{f}");
    // Another restart runs nothing again: a new call queued behind anything
    // left (one at a time, in order) sees the counter at 1.
    assert_eq!(s.stop().code(), Some(0));
    let s = Server::start_in(dir.path(), &["--config", cfg]);
    let (_, q) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "once", "async": true}),
        )
        .await;
    let next = q["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{next}?wait=10s")).await;
    assert_eq!(a["result"], 2, "{a}");
}

#[tokio::test]
async fn ticks_missed_while_down_are_caught_up_once_not_in_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let kv = s.deploy("kv").await;
    let (st, sched) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                    "namespace": "miss", "every": "2s", "run_now": true}),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while kv_value(&s, "miss", "atomic").await.is_none() {
        assert!(Instant::now() < deadline, "the first tick never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.push(1);
    assert_eq!(s.stop().code(), Some(0));
    // Down for 5 s: two or three ticks missed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let restarted = std::time::SystemTime::now();
    let s = Server::start_in(dir.path(), &[]);
    let since_restart = |acts: &[Value]| {
        acts.iter()
            .filter(|a| {
                humantime::parse_rfc3339(a["start"].as_str().unwrap()).unwrap() >= restarted
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while since_restart(&s.activations(&kv).await) == 0 {
        assert!(
            Instant::now() < deadline,
            "no catch-up run after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One catch-up run; the next tick is a full interval later, not now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let acts = s.activations(&kv).await;
    assert_eq!(since_restart(&acts), 1, "{acts:?}");
    let total = acts.len();
    let before = s
        .get(&format!("/v1/schedules/{}", sched["id"].as_str().unwrap()))
        .await
        .1;
    assert_eq!(
        before["state"]["runs"].as_u64(),
        Some(total as u64),
        "{before}"
    );
}

#[tokio::test]
async fn a_failing_async_call_is_retried_then_dead_lettered() {
    let s = Server::start(&[]);
    let bad = s.deploy("misbehave").await;
    let (st, q) = s
        .post_json(
            "/v1/invoke",
            // `2.0` where an integer goes is the integer 2, as JSON
            // Schema reads it.
            &json!({"function": bad, "export": "boom", "params": {"msg": "no"},
                    "async": true, "retry": {"max": 2.0, "backoff": "50ms"}}),
        )
        .await;
    assert_eq!(st, 202, "{q}");
    let id = q["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{id}?wait=10s")).await;
    assert_eq!(a["status"], "failed", "{a}");
    assert_eq!(a["attempts"], 3, "one try and two retries: {a}");
    assert_eq!(a["error"]["code"], "function_trap");
    let (_, dead) = s.get("/v1/dead-letters").await;
    let dead = dead["dead_letters"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["activation"], id);
    assert_eq!(dead[0]["attempts"], 3);
    // Bad retry settings are refused up front.
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": bad, "export": "noop", "async": true,
                    "retry": {"max": 1, "backoff": "soon"}}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": bad, "export": "noop", "async": true,
                    "retry": {"max": 1.5}}),
        )
        .await;
    let e = assert_error(st, &body, 400, "invalid_request");
    assert!(e["message"].as_str().unwrap().contains("1.5"), "{body}");
    // An async call with a bad `set` key is refused before it is queued.
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": bad, "export": "noop", "async": true,
                    "namespace": "n", "set": {"": 1}}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_key");
    // An async call with bad parameters is refused before it is queued.
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": bad, "export": "boom", "async": true}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_params");
}

#[tokio::test]
async fn an_alias_switched_under_load_fails_no_call() {
    let s = std::sync::Arc::new(Server::start(&[]));
    let calc = s.deploy("calc").await;
    let other = s.deploy("misbehave").await;
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/adder",
            &json!({"function": calc}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // Callers hammer the alias while it is switched back and forth, until
    // every caller has reached both targets (at least 10 switches).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reached: Vec<_> = (0..8)
        .map(|_| std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new())))
        .collect();
    let mut callers = Vec::new();
    for r in &reached {
        let (s, stop, r) = (s.clone(), stop.clone(), r.clone());
        callers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (st, out) = s
                    .post_json("/v1/functions/adder/add", &json!({"a": 2, "b": 3}))
                    .await;
                assert_eq!((st, &out["result"]), (200, &json!(5)), "{out}");
                r.lock()
                    .unwrap()
                    .insert(out["function"].as_str().unwrap().to_string());
                n += 1;
            }
            n
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut switches = 0;
    loop {
        let target = if switches % 2 == 0 { &other } else { &calc };
        let (st, body) = s
            .put_json_as(
                "/v1/aliases/adder",
                &json!({"function": target}),
                Some(&s.token),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        switches += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let all_both = reached.iter().all(|r| r.lock().unwrap().len() == 2);
        if switches >= 10 && switches % 2 == 0 && all_both {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "callers did not reach both targets"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in callers {
        assert!(c.await.unwrap() > 0);
    }

    // The last switch (an even count) went to calc; rollback returns to the previous target.
    let (st, back) = s.post_json("/v1/aliases/adder/rollback", &json!({})).await;
    assert_eq!((st, &back["function"]), (200, &json!(other)), "{back}");
    let (_, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "adder", "export": "add", "params": {"a": 1, "b": 1}}),
        )
        .await;
    assert_eq!(out["function"], other.as_str());
    let act = out["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{act}")).await;
    assert_eq!(
        (a["alias"].as_str(), a["function"].as_str()),
        (Some("adder"), Some(other.as_str()))
    );

    // Owner only: a public token cannot move an alias; unknown names are 404.
    let public = s.mint(&json!({})).await;
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/adder",
            &json!({"function": calc}),
            Some(&public),
        )
        .await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s
        .post_json("/v1/functions/nope/add", &json!({"a": 1, "b": 1}))
        .await;
    assert_error(st, &body, 404, "alias_not_found");
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/adder",
            &json!({"function": format!("sha256:{}", "0".repeat(64))}),
            Some(&s.token),
        )
        .await;
    assert_error(st, &body, 404, "function_not_found");
    // The CLI: rollback twice walks the history back.
    let (ok, out, err) = orb_t(
        &s.token,
        &["alias", "rollback", "adder", "--server", &s.url],
    );
    assert!(ok, "{err}");
    assert!(out.contains(&calc), "{out}");
    // The CLI calls an alias by name, synchronously or queued.
    let (ok, out, err) = orb_t(
        &s.token,
        &["invoke", "adder", "add", "a=2", "b=3", "--server", &s.url],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5");
    let (ok, out, err) = orb_t(
        &s.token,
        &[
            "invoke", "adder", "add", "a=4", "b=4", "--async", "--server", &s.url,
        ],
    );
    assert!(ok, "{err}");
    let id = out.trim().to_string();
    let (ok, out, err) = orb_t(
        &s.token,
        &["act", "wait", &id, "--json", "--server", &s.url],
    );
    assert!(ok, "{err}");
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (a["status"].as_str(), a["result"].as_i64()),
        (Some("succeeded"), Some(8)),
        "{a}"
    );
}

#[tokio::test]
async fn concurrent_alias_switches_keep_every_target_in_the_history() {
    let s = Server::start(&[]);
    let names = [
        "calc",
        "events",
        "feed-reader",
        "fetch",
        "hello",
        "http-hello",
        "kv",
        "kv2",
        "misbehave",
        "thermostat",
    ];
    let mut hashes = Vec::new();
    for n in names {
        hashes.push(s.deploy(n).await);
    }
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/busy",
            &json!({"function": hashes[0]}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // Nine switches at once, each to a function the alias never pointed to.
    let bodies: Vec<Value> = hashes[1..].iter().map(|h| json!({"function": h})).collect();
    let switches = bodies
        .iter()
        .map(|b| s.put_json_as("/v1/aliases/busy", b, Some(&s.token)));
    for (st, body) in futures_util::future::join_all(switches).await {
        assert_eq!(st, 200, "{body}");
    }
    let (st, alias) = s.get("/v1/aliases/busy").await;
    assert_eq!(st, 200, "{alias}");
    // Each switch moved the target it found into the history: none was lost.
    let previous: Vec<&str> = alias["previous"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(previous.len(), hashes.len() - 1, "{alias}");
    let mut seen: Vec<&str> = previous.clone();
    seen.push(alias["function"].as_str().unwrap());
    seen.sort();
    let mut all: Vec<&str> = hashes.iter().map(String::as_str).collect();
    all.sort();
    assert_eq!(seen, all, "{alias}");
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_schedules() {
    let s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    let url = s.url.clone();
    let (ok, out, err) = orb_t(
        &s.token,
        &[
            "schedule",
            "add",
            &kv,
            "incr",
            "delta=1",
            "--every",
            "1m",
            "--ns",
            "cli",
            "--write-to",
            "last",
            "--server",
            &url,
        ],
    );
    assert!(ok, "{err}");
    let id = out.trim().to_string();
    assert!(err.contains("next run:"), "{err}");
    let (ok, out, err) = orb_t(&s.token, &["schedule", "ls", "--json", "--server", &url]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let mine = &list["schedules"][0];
    assert_eq!(
        (mine["id"].as_str(), mine["every"].as_str()),
        (Some(id.as_str()), Some("1m")),
        "{list}"
    );
    let (ok, _, err) = orb_t(
        &s.token,
        &[
            "schedule", "add", &kv, "incr", "delta=1", "--every", "soon", "--server", &url,
        ],
    );
    assert!(!ok && err.contains("invalid_schedule"), "{err}");
    let (ok, _, err) = orb_t(&s.token, &["schedule", "rm", &id, "--server", &url]);
    assert!(ok, "{err}");
    let (ok, _, err) = orb_t(&s.token, &["schedule", "show", &id, "--server", &url]);
    assert!(!ok && err.contains("schedule_not_found"), "{err}");
}

#[tokio::test]
async fn an_interval_past_the_year_9999_is_an_ended_schedule_not_a_crash() {
    // Regression (issue 18, fuzzing the schedule parser): these panicked
    // the request (formatting a tick after year 9999; an overflowing add).
    let s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    for every in ["500000000years", "18446744073709551615s"] {
        let (st, out) = s
            .post_json(
                "/v1/schedules",
                &json!({"function": kv, "export": "incr", "params": {"delta": 1},
                        "namespace": "far", "every": every}),
            )
            .await;
        assert_eq!(st, 201, "{every}: {out}");
        assert_eq!(out["state"]["ended"], true, "{every}: {out}");
        assert!(out["state"]["next_run"].is_null(), "{out}");
    }
    let (st, _) = s.get("/healthz").await;
    assert_eq!(st, 200);
}
