//! Orb example: `greet(name)` returns "{greeting}, {name}!", where `greeting`
//! comes from the function's config (key `greeting`, default "Hello").

wit_bindgen::generate!({
    path: ["../wit/deps/config", "../wit/deps/logging", "wit"],
    world: "orb:hello/hello",
    // The shared packages are passed as separate paths, so ask for their bindings too.
    generate_all,
});

use wasi::config::store;
use wasi::logging::logging::{self, Level};

struct Hello;

impl Guest for Hello {
    fn greet(name: String) -> String {
        let greeting = match store::get("greeting") {
            Ok(Some(g)) => g,
            Ok(None) => "Hello".to_string(),
            Err(e) => {
                logging::log(Level::Warn, "hello", &format!("config error: {e:?}"));
                "Hello".to_string()
            }
        };
        println!("greeting {name}");
        logging::log(Level::Info, "hello", &format!("greeting {name} with {greeting:?}"));
        format!("{greeting}, {name}!")
    }
}

export!(Hello);
