//! Orb test guest: functions that misbehave on purpose.

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({
    path: "wit",
    world: "misbehave",
});

static COUNTER: AtomicU64 = AtomicU64::new(0);

const MIB: usize = 1 << 20;
const LINE: usize = 64 * 1024;

struct Misbehave;

impl Guest for Misbehave {
    fn noop() {}

    fn spin() {
        let mut i: u64 = 0;
        loop {
            i = black_box(i.wrapping_add(1));
        }
    }

    fn bomb() -> u64 {
        // Never returns: once memory.grow is refused, the allocation failure
        // aborts (prints "memory allocation of N bytes failed", then traps).
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut total: u64 = 0;
        loop {
            let mut chunk = vec![0xABu8; MIB];
            // Touch every page so the memory is really used.
            for i in (0..MIB).step_by(4096) {
                chunk[i] = (total as u8).wrapping_add(i as u8);
            }
            total += MIB as u64;
            chunks.push(black_box(chunk));
            if black_box(total) == u64::MAX {
                return chunks.len() as u64;
            }
        }
    }

    fn boom(msg: String) {
        panic!("{msg}");
    }

    fn spam(bytes: u64) -> u64 {
        let mut line = vec![b'x'; LINE];
        line[LINE - 1] = b'\n';
        let mut out = std::io::stdout().lock();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(LINE as u64) as usize;
            // Every chunk is one newline-terminated line of `n` bytes.
            out.write_all(&line[LINE - n..]).expect("stdout write failed");
            left -= n as u64;
        }
        out.flush().expect("stdout flush failed");
        bytes
    }

    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn snoop() -> Vec<String> {
        let mut out = vec![format!("env: {} vars", std::env::vars().count())];
        out.push(format!("args: {}", std::env::args().count()));
        out.push(match std::fs::read_dir("/") {
            Ok(d) => format!("fs /: {} entries", d.count()),
            Err(e) => format!("fs /: error {e}"),
        });
        out.push(match std::fs::read_to_string("/etc/passwd") {
            Ok(s) => format!("passwd: read {} bytes", s.len()),
            Err(e) => format!("passwd: error {e}"),
        });
        let mut stdin = String::new();
        out.push(match std::io::Read::read_to_string(&mut std::io::stdin(), &mut stdin) {
            Ok(n) => format!("stdin: {n} bytes"),
            Err(e) => format!("stdin: error {e}"),
        });
        out
    }

    fn count() -> u64 {
        COUNTER.fetch_add(1, Ordering::SeqCst) + 1
    }
}

export!(Misbehave);
