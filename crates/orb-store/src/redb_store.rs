use crate::{
    ActivationQuery, Commit, KvEntry, NamespaceInfo, NsCommit, Quota, QuotaExceeded, RecordChange,
    RecordKind, Store, StoreError, StoreResult,
};
use async_trait::async_trait;
use bytes::Bytes;
use orb_core::{Account, Activation, FunctionId, FunctionInfo};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// hash hex → component bytes.
const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
/// hash hex → FunctionInfo JSON.
const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");
/// activation id (UUIDv7, time-ordered) → Activation JSON.
const ACTIVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("activations");
/// "<account>/<hash hex>/<activation id>" → () — activations by function.
const ACT_BY_FN: TableDefinition<&str, ()> = TableDefinition::new("activations_by_function");
/// "<account>/<activation id>" → () — activations by account.
const ACT_BY_ACCOUNT: TableDefinition<&str, ()> = TableDefinition::new("activations_by_account");
/// "<account>/<hash hex>" → FunctionInfo JSON (with the account's upload time).
const OWNERS: TableDefinition<&str, &[u8]> = TableDefinition::new("function_owners");
/// account id → Account JSON.
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// revocation id (hex) → () — revoked tokens.
const REVOKED: TableDefinition<&str, ()> = TableDefinition::new("revoked_tokens");
/// "<account>\0<namespace>\0<key>" → revision (8 bytes BE) + value JSON text.
const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// "<account>\0<namespace>" → (keys, bytes).
const NS_STATS: TableDefinition<&str, (u64, u64)> = TableDefinition::new("namespace_stats");
/// "<kind>\0<key>" → record bytes (aliases, queued calls, dead letters, schedules).
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// "<account>/<namespace>" → JSON array of function ids.
const WHITELISTS: TableDefinition<&str, &[u8]> = TableDefinition::new("whitelists");

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Activations kept; the oldest are pruned beyond this.
    pub max_activations: u64,
    /// Per-account limits on keys and bytes in namespaces.
    pub quota: Quota,
    /// Writes are refused (`StoreError::Full`) while the filesystem holding
    /// the store has less than this many bytes free (plus the write's own
    /// size): the store never runs into a full disk mid-commit, where the
    /// database could only fail every later read until it is reopened.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_activations: 10_000,
            quota: Quota::default(),
            min_free_bytes: 64 << 20,
        }
    }
}

/// Bytes free for writing on the filesystem holding `dir` (`None` when the
/// filesystem does not say).
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Refuses a write of about `size` bytes when the disk holding `dir` would
/// be left with less than the configured reserve.
fn ensure_space(dir: &Path, config: &StoreConfig, size: u64) -> StoreResult<()> {
    let Some(free) = free_bytes(dir) else {
        return Ok(());
    };
    let need = config.min_free_bytes.saturating_add(size);
    if free < need {
        return Err(StoreError::Full(format!(
            "the disk holding the store ({}) has {} bytes free, below the {} bytes this write \
             needs with the node's reserve (`min_free_disk_bytes`). Free space on that disk \
             (or grow it): writes resume by themselves, and reads go on meanwhile",
            dir.display(),
            free,
            need
        )));
    }
    Ok(())
}

/// Opens (or creates) the database at `path`, verifying the checksum of
/// every page of an existing file first (redb's integrity check on open): a
/// file that was truncated, overwritten or altered outside redb is refused
/// with [`StoreError::Damaged`] naming it and what to do, never read (a
/// plain open may panic on such a file, or serve what it misreads).
fn open_checked(path: &Path) -> StoreResult<Database> {
    let existed = std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    // redb may still panic on some damage before its checks run: that is
    // damage too, reported as such. Its panic message goes into ours, not
    // to stderr with a backtrace.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| {
        redb::Builder::new()
            .set_check_integrity_on_open(true)
            .create(path)
    });
    std::panic::set_hook(hook);
    let damaged = |detail: String| {
        StoreError::Damaged(format!(
            "the store file {} is damaged ({detail}). The node does not start on a damaged \
             store, so nothing is lost silently. Stop the node and restore {} from a backup \
             (a copy taken while the node was stopped), or move it aside to start with an \
             empty store; keep the damaged file for recovery",
            path.display(),
            path.display(),
        ))
    };
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::Backend(format!(
            "{} is open in another process: is another node running on this data folder?",
            path.display()
        ))),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(io))))
            if io.kind() == std::io::ErrorKind::StorageFull =>
        {
            Err(StoreError::Full(format!(
                "the disk holding {} is full ({io}): free space on it, then start the node again",
                path.display()
            )))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(io))))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Err(StoreError::Backend(format!("{}: {io}", path.display())))
        }
        Ok(Err(e)) if existed => Err(damaged(e.to_string())),
        Ok(Err(e)) => Err(backend(e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the database could not read it".into());
            Err(damaged(msg))
        }
    }
}

/// A commit's error as the store reports it (see [`io_error`]).
fn commit_error(e: &redb::CommitError) -> StoreError {
    match e {
        redb::CommitError::Storage(s) => io_error(s).unwrap_or_else(|| backend(e)),
        other => backend(other),
    }
}

/// A write transaction's error as the store reports it (see [`io_error`]).
fn storage_error(e: &redb::TransactionError) -> StoreError {
    match e {
        redb::TransactionError::Storage(s) => io_error(s).unwrap_or_else(|| backend(e)),
        other => backend(other),
    }
}

/// A full disk met mid-commit (the reserve is 0, or something else filled
/// the disk faster) is `Full`; the commit was rolled back. redb then fails
/// every later write of this handle (reads from its cache go on) until the
/// database is reopened: said so, with what to do.
fn io_error(e: &redb::StorageError) -> Option<StoreError> {
    match e {
        redb::StorageError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            Some(StoreError::Full(format!(
                "the disk holding the store is full ({io}); the commit was rolled back. Free \
                 space on that disk, then restart the node (reads go on meanwhile)"
            )))
        }
        redb::StorageError::PreviousIo => Some(StoreError::Backend(
            "an earlier write failed on the disk (full, or an I/O error), so the store refuses \
             writes until the node restarts: free space on the disk holding the data folder, \
             then restart the node (nothing acknowledged is lost; reads go on meanwhile)"
                .into(),
        )),
        _ => None,
    }
}

/// The embedded store: one redb file, `orb.redb`, in the data folder.
///
/// Functions are committed with immediate durability. Namespace writes and
/// activations go through one writer thread that applies every write queued
/// meanwhile in a single transaction (group commit): one fsync acknowledges
/// them all.
///
/// Activation records are off the call path: `put_activation` queues the
/// record and returns; the writer holds a batch of only activations open
/// for up to 10 ms to commit many at once, without fsync, and makes one
/// batch durable at least every second (a crash loses at most that much;
/// [`Store::flush`], called on shutdown, loses none). Activation reads
/// first wait for the records queued before them, so a caller always finds
/// its own calls. redb reopens the file at a consistent commit either way.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    /// The data folder (its filesystem's free space gates writes).
    dir: Arc<PathBuf>,
    config: StoreConfig,
    writer: Arc<Writer>,
    /// Ownerships known to exist (`account/hex`): every call checks one,
    /// and a hit skips a read transaction on the blocking pool. Only this
    /// store writes ownerships, so it keeps the cache exact (see `owns`).
    owned: Arc<std::sync::RwLock<OwnedCache>>,
    /// Configuration records (aliases, outbound policies, secrets, rules…)
    /// read on every call of their account, answered from memory after the
    /// first read. Only [`Store::put_records`] writes records, and it
    /// invalidates the kinds it wrote once they are committed.
    records: Arc<std::sync::RwLock<RecordCache>>,
    /// Activation records queued on the writer and not yet committed.
    pending: Arc<AtomicU64>,
}

/// Read-through cache of `get_record` and `list_records` answers (misses
/// included) for the kinds in [`cached_kind`]. `generation` moves on every
/// invalidation, so a read that raced with a write never caches what the
/// write replaced.
#[derive(Default)]
struct RecordCache {
    gets: std::collections::HashMap<(RecordKind, String), Option<Vec<u8>>>,
    lists: std::collections::HashMap<(RecordKind, String), Listing>,
    /// Namespace whitelists (`account/namespace`), checked by every call
    /// that names a namespace.
    whitelists: std::collections::HashMap<String, Option<Vec<FunctionId>>>,
    generation: u64,
}

/// A `list_records` answer: (key, bytes) in key order.
type Listing = Vec<(String, Vec<u8>)>;

/// Entries kept at most; a full cache starts over (it only saves reads).
const RECORD_CACHE_MAX: usize = 16_384;

/// Kinds read on the call path and written rarely. Queues, dead letters,
/// outports and schedules change with every call or tick: not cached.
fn cached_kind(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Alias
            | RecordKind::PublicRoute
            | RecordKind::Outbound
            | RecordKind::Secret
            | RecordKind::Trigger
            | RecordKind::Rule
            | RecordKind::Kappa
    )
}

impl RecordCache {
    fn invalidate(&mut self, kinds: &[RecordKind]) {
        self.generation += 1;
        self.gets.retain(|(k, _), _| !kinds.contains(k));
        self.lists.retain(|(k, _), _| !kinds.contains(k));
    }

    fn make_room(&mut self) {
        if self.gets.len() + self.lists.len() + self.whitelists.len() >= RECORD_CACHE_MAX {
            self.gets.clear();
            self.lists.clear();
            self.whitelists.clear();
        }
    }
}

/// Positive ownership cache. `deletions` counts removals, so a read that
/// raced with one does not put a removed ownership back.
#[derive(Default)]
struct OwnedCache {
    keys: std::collections::HashSet<String>,
    deletions: u64,
}

/// The group-commit thread's queue. When the last handle goes, the queue
/// closes and the thread is joined, so the database is closed on return
/// (and can be opened again in this process).
struct Writer {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A write for the group-commit thread. `run` applies it to the shared
/// transaction and keeps its own result, answering whether it succeeded; it
/// may run more than once (a batch is re-run without a failed job).
/// `finish` answers the caller once the batch is committed (`None`) or has
/// failed (`Some(error)`).
struct Job {
    durable: bool,
    /// Nobody waits for it (an activation record): the writer may hold its
    /// batch open a little to commit more of them at once.
    lazy: bool,
    run: Box<RunJob>,
    finish: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

type RunJob = dyn FnMut(&WriteTransaction, &StoreConfig) -> bool + Send;

/// Jobs applied in one transaction at most.
const MAX_BATCH: usize = 512;

/// How long a batch of only lazy jobs waits for company before it is
/// committed. A job someone waits for ends the wait: its sender unparks the
/// writer (`RedbStore::send_job`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// The longest a non-durable commit stays the newest (see `writer_loop`).
const DURABLE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Activation records queued but not yet committed beyond which
/// `put_activation` waits for its commit (backpressure when the writer
/// cannot keep up).
const MAX_PENDING_ACTIVATIONS: u64 = 8_192;

/// The group-commit loop: wait for a job, take every job queued behind it,
/// apply them in order in one transaction, commit once, answer them all.
///
/// A job that fails (a backend error, even a panic) is answered with its own
/// error and dropped from the batch; the transaction is aborted and the rest
/// of the batch re-run without it, so no partial write is committed and no
/// other caller pays for it.
fn writer_loop(
    db: Arc<Database>,
    dir: PathBuf,
    config: StoreConfig,
    jobs: std::sync::mpsc::Receiver<Job>,
) {
    let mut last_durable = std::time::Instant::now();
    // Whether a non-durable commit happened since the last durable one.
    let mut dirty = false;
    loop {
        let first = if dirty {
            // Idle with non-durable commits: make them durable within a second.
            let left = DURABLE_EVERY.saturating_sub(last_durable.elapsed());
            match jobs.recv_timeout(left) {
                Ok(j) => j,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    match db
                        .begin_write()
                        .map_err(backend)
                        .and_then(|t| t.commit().map_err(backend))
                    {
                        Ok(()) => {
                            dirty = false;
                            last_durable = std::time::Instant::now();
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "store: the periodic durable commit failed");
                            last_durable = std::time::Instant::now();
                        }
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(j) => j,
                Err(_) => break,
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if batch.iter().all(|j| j.lazy) {
            // Park instead of blocking on the queue: a sender wakes only a
            // receiver blocked in `recv`, so records queued meanwhile cost no
            // wake-up each (nor does a poll loop). A job someone waits for
            // unparks the writer and ends the wait.
            let deadline = std::time::Instant::now() + LINGER;
            'linger: loop {
                loop {
                    match jobs.try_recv() {
                        Ok(j) => {
                            let waited_for = !j.lazy;
                            batch.push(j);
                            if waited_for || batch.len() >= MAX_BATCH {
                                break 'linger;
                            }
                        }
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => break 'linger,
                    }
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
        // A full disk refuses the whole batch before anything is written.
        if let Err(e) = ensure_space(&dir, &config, batch.len() as u64 * 4096) {
            tracing::warn!(error = %e, "store: refusing writes");
            for j in batch.drain(..) {
                (j.finish)(Some(StoreError::Full(e.to_string())));
            }
            continue;
        }
        while !batch.is_empty() {
            let mut txn = match db.begin_write() {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "store: cannot begin a write transaction");
                    for j in batch.drain(..) {
                        (j.finish)(Some(storage_error(&e)));
                    }
                    break;
                }
            };
            // Non-durable batches (only activations) are made durable at
            // least once a second: a crash loses at most that much of them.
            let durable =
                batch.iter().any(|j| j.durable) || last_durable.elapsed() >= DURABLE_EVERY;
            if !durable && let Err(e) = txn.set_durability(Durability::None) {
                tracing::warn!(error = %e, "store: could not relax durability; committing durably");
            }
            let failed: Vec<bool> = batch.iter_mut().map(|j| !(j.run)(&txn, &config)).collect();
            if failed.iter().any(|f| *f) {
                let _ = txn.abort();
                let mut keep = Vec::with_capacity(batch.len());
                for (j, failed) in batch.drain(..).zip(failed) {
                    if failed {
                        (j.finish)(None); // its own error is in its result
                    } else {
                        keep.push(j);
                    }
                }
                batch = keep;
                continue;
            }
            let committed = txn.commit();
            if committed.is_ok() {
                if durable {
                    last_durable = std::time::Instant::now();
                }
                dirty = !durable;
            }
            if let Err(e) = &committed {
                tracing::error!(error = %e, "store: commit failed");
            }
            for j in batch.drain(..) {
                (j.finish)(committed.as_ref().err().map(commit_error));
            }
        }
    }
}

/// Adds revocation ids in `txn` (revocations are only ever added).
fn insert_revocations(txn: &redb::WriteTransaction, ids: &[String]) -> StoreResult<()> {
    let mut t = txn.open_table(REVOKED).map_err(backend)?;
    for id in ids {
        t.insert(id.as_str(), ()).map_err(backend)?;
    }
    Ok(())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) `<dir>/orb.redb`.
    pub fn open(dir: &Path, config: StoreConfig) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = open_checked(&dir.join("orb.redb"))?;
        let txn = db.begin_write().map_err(|e| storage_error(&e))?;
        {
            txn.open_table(COMPONENTS).map_err(backend)?;
            txn.open_table(FUNCTIONS).map_err(backend)?;
            txn.open_table(ACTIVATIONS).map_err(backend)?;
            txn.open_table(ACT_BY_FN).map_err(backend)?;
            txn.open_table(ACT_BY_ACCOUNT).map_err(backend)?;
            txn.open_table(OWNERS).map_err(backend)?;
            txn.open_table(ACCOUNTS).map_err(backend)?;
            txn.open_table(REVOKED).map_err(backend)?;
            txn.open_table(WHITELISTS).map_err(backend)?;
            txn.open_table(KV).map_err(backend)?;
            txn.open_table(NS_STATS).map_err(backend)?;
            txn.open_table(RECORDS).map_err(backend)?;
        }
        txn.commit().map_err(|e| commit_error(&e))?;
        let db = Arc::new(db);
        let (writer, jobs) = std::sync::mpsc::channel();
        let (db2, dir2, config2) = (db.clone(), dir.to_path_buf(), config.clone());
        let thread = std::thread::Builder::new()
            .name("orb-store-writer".into())
            .spawn(move || writer_loop(db2, dir2, config2, jobs))
            .map_err(backend)?;
        Ok(Self {
            db,
            dir: Arc::new(dir.to_path_buf()),
            config,
            writer: Arc::new(Writer {
                jobs: Some(writer),
                thread: Some(thread),
            }),
            owned: Default::default(),
            records: Default::default(),
            pending: Default::default(),
        })
    }

    /// Runs `f` in the group-commit transaction and answers once it is
    /// committed (fsync'd when `durable`). `f` must not write when it
    /// refuses (returns `Ok` with a refusal), and may only fail on
    /// backend errors (which abort its batch).
    async fn write<T: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnMut(&WriteTransaction, &StoreConfig) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.submit(durable, false, f)?
            .await
            .map_err(|_| StoreError::Backend("the store's writer thread dropped a write".into()))?
    }

    /// Queues `f` for the group-commit thread; the receiver answers once
    /// its batch is committed.
    fn submit<T: Send + 'static>(
        &self,
        durable: bool,
        lazy: bool,
        f: impl FnMut(&WriteTransaction, &StoreConfig) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<tokio::sync::oneshot::Receiver<StoreResult<T>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send_job(durable, lazy, f, move |answer| {
            let _ = tx.send(answer);
        })?;
        Ok(rx)
    }

    /// Queues `f` for the group-commit thread; `done` gets its result once
    /// its batch is committed (or failed), on the writer thread.
    fn send_job<T: Send + 'static>(
        &self,
        durable: bool,
        lazy: bool,
        mut f: impl FnMut(&WriteTransaction, &StoreConfig) -> StoreResult<T> + Send + 'static,
        done: impl FnOnce(StoreResult<T>) + Send + 'static,
    ) -> StoreResult<()> {
        let slot: Arc<std::sync::Mutex<Option<StoreResult<T>>>> = Arc::default();
        let mine = slot.clone();
        let run = move |txn: &WriteTransaction, cfg: &StoreConfig| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(txn, cfg)))
                .unwrap_or_else(|_| Err(StoreError::Backend("a store write panicked".into())));
            if let Err(e) = &result {
                tracing::error!(error = %e, "store: a write failed; it is left out of its batch");
            }
            let fine = result.is_ok();
            *mine.lock().expect("slot lock") = Some(result);
            fine
        };
        let finish = move |failed: Option<StoreError>| {
            let result = slot.lock().expect("slot lock").take();
            done(match (result, failed) {
                (Some(Err(e)), _) | (_, Some(e)) => Err(e),
                (Some(Ok(v)), None) => Ok(v),
                (None, None) => Err(StoreError::Backend("the write never ran".into())),
            });
        };
        self.writer
            .jobs
            .as_ref()
            .expect("open until dropped")
            .send(Job {
                durable,
                lazy,
                run: Box::new(run),
                finish: Box::new(finish),
            })
            .map_err(|_| StoreError::Backend("the store's writer thread has stopped".into()))?;
        if !lazy && let Some(t) = &self.writer.thread {
            // Ends a linger on lazy jobs (a no-op token when it is not parked).
            t.thread().unpark();
        }
        Ok(())
    }

    /// Waits until every activation queued so far is committed, so reads
    /// see the caller's own calls. Free when none is pending.
    async fn settle_activations(&self) -> StoreResult<()> {
        if self.pending.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.write(false, |_, _| Ok(())).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, &StoreConfig) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this.db, &this.config))
            .await
            .map_err(backend)?
    }

    /// Like [`Self::blocking`] for a write of about `size` bytes: refused
    /// with `StoreError::Full` before it starts when the disk is (nearly)
    /// full.
    async fn blocking_write<T: Send + 'static>(
        &self,
        size: u64,
        f: impl FnOnce(&Database, &StoreConfig) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        ensure_space(&self.dir, &self.config, size)?;
        self.blocking(f).await
    }

    /// A read answered from the record cache when `cached` and present;
    /// otherwise `read` on the blocking pool, whose answer is cached unless
    /// an invalidation happened meanwhile (the generation moved).
    async fn through_cache<T: Clone + Send + 'static>(
        &self,
        cached: bool,
        get: impl FnOnce(&RecordCache) -> Option<T>,
        put: impl FnOnce(&mut RecordCache, T),
        read: impl FnOnce(&Database) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if !cached {
            return self.blocking(move |db, _| read(db)).await;
        }
        let generation = {
            let cache = self.records.read().expect("records lock");
            if let Some(v) = get(&cache) {
                return Ok(v);
            }
            cache.generation
        };
        let value = self.blocking(move |db, _| read(db)).await?;
        let mut cache = self.records.write().expect("records lock");
        if cache.generation == generation {
            cache.make_room();
            put(&mut cache, value.clone());
        }
        Ok(value)
    }
}

/// Validates and applies one commit inside the writer's transaction: every
/// read revision (and listed key set) must be unchanged and the account must
/// stay within its quota; only then is anything written, so a refused commit
/// leaves the shared transaction untouched.
/// Returns the outcome and the new revision of each written key (0 for deletes).
fn commit_in(
    txn: &WriteTransaction,
    quota: Quota,
    account: &str,
    parts: &[NsCommit],
) -> StoreResult<(Commit, Vec<u64>)> {
    let parts = &merge_parts(parts);
    let mut t = txn.open_table(KV).map_err(backend)?;
    let mut stats = txn.open_table(NS_STATS).map_err(backend)?;
    // 1. Validate what was read.
    for part in parts {
        let base = format!("{account}\0{}\0", part.namespace);
        for (key, seen) in &part.reads {
            let now = t
                .get(format!("{base}{key}").as_str())
                .map_err(backend)?
                .map(|v| split_entry(v.value()).revision);
            if now != *seen {
                return Ok((Commit::Conflict, Vec::new()));
            }
        }
        if let Some(listed) = &part.listed {
            let mut now = t.range(base.as_str()..).map_err(backend)?;
            let mut listed = listed.iter();
            loop {
                let here = match now.next() {
                    Some(e) => {
                        let (k, _) = e.map_err(backend)?;
                        k.value().strip_prefix(base.as_str()).map(|k| k.to_string())
                    }
                    None => None,
                };
                match (here, listed.next()) {
                    (None, None) => break,
                    (Some(a), Some(b)) if a == *b => continue,
                    _ => return Ok((Commit::Conflict, Vec::new())),
                }
            }
        }
    }
    // 2. Work out the new sizes and check the quota before writing anything.
    let mut befores = (0u64, 0u64);
    let mut afters = (0u64, 0u64);
    let mut new_stats = Vec::with_capacity(parts.len());
    for part in parts {
        let base = format!("{account}\0{}\0", part.namespace);
        let ns = format!("{account}\0{}", part.namespace);
        let before = stats
            .get(ns.as_str())
            .map_err(backend)?
            .map_or((0, 0), |v| v.value());
        let (mut keys, mut bytes) = before;
        for (key, value) in &part.writes {
            if let Some(old) = t.get(format!("{base}{key}").as_str()).map_err(backend)? {
                keys = keys.saturating_sub(1);
                bytes = bytes.saturating_sub(old.value().len().saturating_sub(8) as u64);
            }
            if let Some(v) = value {
                keys += 1;
                bytes += v.len() as u64;
            }
        }
        befores = (befores.0 + before.0, befores.1 + before.1);
        afters = (afters.0 + keys, afters.1 + bytes);
        new_stats.push((ns, (keys, bytes)));
    }
    if let Err(q) = check_quota(&stats, account, befores, afters, quota)? {
        return Ok((Commit::OverQuota(q), Vec::new()));
    }
    // 3. Apply.
    let mut revisions = Vec::new();
    for part in parts {
        let base = format!("{account}\0{}\0", part.namespace);
        for (key, value) in &part.writes {
            let k = format!("{base}{key}");
            match value {
                Some(v) => {
                    let revision = t
                        .get(k.as_str())
                        .map_err(backend)?
                        .map_or(1, |o| split_entry(o.value()).revision + 1);
                    let mut buf = Vec::with_capacity(8 + v.len());
                    buf.extend_from_slice(&revision.to_be_bytes());
                    buf.extend_from_slice(v);
                    t.insert(k.as_str(), buf.as_slice()).map_err(backend)?;
                    revisions.push(revision);
                }
                None => {
                    t.remove(k.as_str()).map_err(backend)?;
                    revisions.push(0);
                }
            }
        }
    }
    for (ns, (keys, bytes)) in new_stats {
        if keys == 0 {
            stats.remove(ns.as_str()).map_err(backend)?;
        } else {
            stats.insert(ns.as_str(), (keys, bytes)).map_err(backend)?;
        }
    }
    Ok((Commit::Done, revisions))
}

/// One part per namespace, each key written once (the last write wins), so
/// the size arithmetic of [`commit_in`] sees every key once.
fn merge_parts(parts: &[NsCommit]) -> Vec<NsCommit> {
    let mut by_ns: std::collections::BTreeMap<&str, NsCommit> = Default::default();
    for p in parts {
        let m = by_ns
            .entry(p.namespace.as_str())
            .or_insert_with(|| NsCommit {
                namespace: p.namespace.clone(),
                ..Default::default()
            });
        m.reads.extend(p.reads.iter().cloned());
        m.writes.extend(p.writes.iter().cloned());
        if m.listed.is_none() {
            m.listed = p.listed.clone();
        }
    }
    for m in by_ns.values_mut() {
        let mut last: std::collections::BTreeMap<String, Option<Vec<u8>>> = Default::default();
        for (k, v) in m.writes.drain(..) {
            last.insert(k, v);
        }
        m.writes = last.into_iter().collect();
    }
    by_ns.into_values().collect()
}

/// The account's keys and bytes over all namespaces, and a check of the
/// totals after replacing the touched namespaces' stats `before` by `after`.
fn check_quota(
    stats: &impl ReadableTable<&'static str, (u64, u64)>,
    account: &str,
    before: (u64, u64),
    after: (u64, u64),
    quota: Quota,
) -> StoreResult<Result<(), QuotaExceeded>> {
    if after.0 <= before.0 && after.1 <= before.1 {
        return Ok(Ok(())); // shrinking is always allowed
    }
    let prefix = format!("{account}\0");
    let (mut keys, mut bytes) = (0u64, 0u64);
    for entry in stats.range(prefix.as_str()..).map_err(backend)? {
        let (k, v) = entry.map_err(backend)?;
        if !k.value().starts_with(prefix.as_str()) {
            break;
        }
        let (ks, bs) = v.value();
        keys += ks;
        bytes += bs;
    }
    let keys = keys.saturating_sub(before.0) + after.0;
    let bytes = bytes.saturating_sub(before.1) + after.1;
    if keys > quota.max_keys {
        return Ok(Err(QuotaExceeded {
            what: "keys",
            limit: quota.max_keys,
            would_be: keys,
        }));
    }
    if bytes > quota.max_bytes {
        return Ok(Err(QuotaExceeded {
            what: "bytes",
            limit: quota.max_bytes,
            would_be: bytes,
        }));
    }
    Ok(Ok(()))
}

fn split_entry(raw: &[u8]) -> KvEntry {
    let (rev, value) = raw.split_at(8.min(raw.len()));
    let mut b = [0u8; 8];
    b[..rev.len()].copy_from_slice(rev);
    KvEntry {
        value: value.to_vec(),
        revision: u64::from_be_bytes(b),
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(backend)
}

#[async_trait]
impl Store for RedbStore {
    async fn put_function(
        &self,
        account: &str,
        info: &FunctionInfo,
        bytes: Bytes,
    ) -> StoreResult<bool> {
        let key = info.hash.hex();
        let owner_key = format!("{account}/{key}");
        let meta = encode(info)?;
        self.blocking_write(bytes.len() as u64, move |db, _| {
            let txn = db.begin_write().map_err(|e| storage_error(&e))?;
            let created;
            {
                let mut fns = txn.open_table(FUNCTIONS).map_err(backend)?;
                if fns.get(key.as_str()).map_err(backend)?.is_none() {
                    fns.insert(key.as_str(), meta.as_slice()).map_err(backend)?;
                    let mut comps = txn.open_table(COMPONENTS).map_err(backend)?;
                    comps
                        .insert(key.as_str(), bytes.as_ref())
                        .map_err(backend)?;
                }
                let mut owners = txn.open_table(OWNERS).map_err(backend)?;
                created = owners.get(owner_key.as_str()).map_err(backend)?.is_none();
                if created {
                    owners
                        .insert(owner_key.as_str(), meta.as_slice())
                        .map_err(backend)?;
                }
            }
            txn.commit().map_err(|e| commit_error(&e))?;
            Ok(created)
        })
        .await
    }

    async fn function_info(&self, id: &FunctionId) -> StoreResult<Option<FunctionInfo>> {
        let key = id.hex();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(FUNCTIONS).map_err(backend)?;
            t.get(key.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn owns(&self, account: &str, id: &FunctionId) -> StoreResult<bool> {
        let key = format!("{account}/{}", id.hex());
        let deletions = {
            let cache = self.owned.read().expect("owned lock");
            if cache.keys.contains(&key) {
                return Ok(true);
            }
            cache.deletions
        };
        let read = key.clone();
        let owned = self
            .blocking(move |db, _| {
                let txn = db.begin_read().map_err(backend)?;
                let t = txn.open_table(OWNERS).map_err(backend)?;
                Ok(t.get(read.as_str()).map_err(backend)?.is_some())
            })
            .await?;
        if owned {
            let mut cache = self.owned.write().expect("owned lock");
            // A deletion since the read began may have removed this one.
            if cache.deletions == deletions {
                cache.keys.insert(key);
            }
        }
        Ok(owned)
    }

    async fn function_bytes(&self, id: &FunctionId) -> StoreResult<Option<Bytes>> {
        let key = id.hex();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(COMPONENTS).map_err(backend)?;
            Ok(t.get(key.as_str())
                .map_err(backend)?
                .map(|v| Bytes::copy_from_slice(v.value())))
        })
        .await
    }

    async fn list_functions(&self, account: &str) -> StoreResult<Vec<FunctionInfo>> {
        let prefix = format!("{account}/");
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(OWNERS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.range(prefix.as_str()..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                if !k.value().starts_with(prefix.as_str()) {
                    break;
                }
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_function(&self, account: &str, id: &FunctionId) -> StoreResult<(bool, bool)> {
        let key = id.hex();
        let owner_key = format!("{account}/{key}");
        let suffix = format!("/{key}");
        let owned = self.owned.clone();
        self.blocking_write(0, move |db, _| {
            let txn = db.begin_write().map_err(|e| storage_error(&e))?;
            let (existed, removed);
            {
                let mut owners = txn.open_table(OWNERS).map_err(backend)?;
                existed = owners
                    .remove(owner_key.as_str())
                    .map_err(backend)?
                    .is_some();
                let mut others = false;
                for entry in owners.iter().map_err(backend)? {
                    let (k, _) = entry.map_err(backend)?;
                    if k.value().ends_with(suffix.as_str()) {
                        others = true;
                        break;
                    }
                }
                removed = existed && !others;
                if removed {
                    let mut fns = txn.open_table(FUNCTIONS).map_err(backend)?;
                    fns.remove(key.as_str()).map_err(backend)?;
                    let mut comps = txn.open_table(COMPONENTS).map_err(backend)?;
                    comps.remove(key.as_str()).map_err(backend)?;
                }
            }
            txn.commit().map_err(|e| commit_error(&e))?;
            // After the commit: a read from here on sees it gone, and one
            // that began before cannot cache it again (`deletions` moved).
            let mut cache = owned.write().expect("owned lock");
            cache.keys.remove(&owner_key);
            cache.deletions += 1;
            Ok((existed, removed))
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let id = account.id.clone();
        let value = encode(account)?;
        self.blocking_write(0, move |db, _| {
            let txn = db.begin_write().map_err(|e| storage_error(&e))?;
            {
                let mut t = txn.open_table(ACCOUNTS).map_err(backend)?;
                t.insert(id.as_str(), value.as_slice()).map_err(backend)?;
            }
            txn.commit().map_err(|e| commit_error(&e))?;
            Ok(())
        })
        .await
    }

    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let id = id.to_string();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(ACCOUNTS).map_err(backend)?;
            t.get(id.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(ACCOUNTS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(backend)? {
                let (_, v) = entry.map_err(backend)?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn add_revocations(&self, ids: &[String]) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.blocking_write(0, move |db, _| {
            let txn = db.begin_write().map_err(|e| storage_error(&e))?;
            insert_revocations(&txn, &ids)?;
            txn.commit().map_err(|e| commit_error(&e))?;
            Ok(())
        })
        .await
    }

    async fn replace_account_token(&self, account: &Account, ids: &[String]) -> StoreResult<()> {
        let id = account.id.clone();
        let value = encode(account)?;
        let ids = ids.to_vec();
        self.blocking_write(0, move |db, _| {
            let txn = db.begin_write().map_err(|e| storage_error(&e))?;
            {
                let mut t = txn.open_table(ACCOUNTS).map_err(backend)?;
                t.insert(id.as_str(), value.as_slice()).map_err(backend)?;
            }
            insert_revocations(&txn, &ids)?;
            txn.commit().map_err(|e| commit_error(&e))?;
            Ok(())
        })
        .await
    }

    async fn list_revocations(&self) -> StoreResult<Vec<String>> {
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(REVOKED).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(backend)? {
                let (k, _) = entry.map_err(backend)?;
                out.push(k.value().to_string());
            }
            Ok(out)
        })
        .await
    }

    async fn set_whitelist(
        &self,
        account: &str,
        namespace: &str,
        functions: &[FunctionId],
    ) -> StoreResult<()> {
        let key = format!("{account}/{namespace}");
        let value = encode(&functions)?;
        let cached = key.clone();
        let written = self
            .blocking_write(0, move |db, _| {
                let txn = db.begin_write().map_err(|e| storage_error(&e))?;
                {
                    let mut t = txn.open_table(WHITELISTS).map_err(backend)?;
                    t.insert(key.as_str(), value.as_slice()).map_err(backend)?;
                }
                txn.commit().map_err(|e| commit_error(&e))?;
                Ok(())
            })
            .await;
        let mut cache = self.records.write().expect("records lock");
        cache.generation += 1;
        cache.whitelists.remove(&cached);
        written
    }

    async fn get_whitelist(
        &self,
        account: &str,
        namespace: &str,
    ) -> StoreResult<Option<Vec<FunctionId>>> {
        let key = format!("{account}/{namespace}");
        let read = key.clone();
        self.through_cache(
            true,
            |c| c.whitelists.get(&key).cloned(),
            |c, v| {
                c.whitelists.insert(key.clone(), v);
            },
            move |db| {
                let txn = db.begin_read().map_err(backend)?;
                let t = txn.open_table(WHITELISTS).map_err(backend)?;
                t.get(read.as_str())
                    .map_err(backend)?
                    .map(|v| decode(v.value()))
                    .transpose()
            },
        )
        .await
    }

    async fn kv_get(
        &self,
        account: &str,
        namespace: &str,
        key: &str,
    ) -> StoreResult<Option<KvEntry>> {
        let k = format!("{account}\0{namespace}\0{key}");
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(KV).map_err(backend)?;
            Ok(t.get(k.as_str())
                .map_err(backend)?
                .map(|v| split_entry(v.value())))
        })
        .await
    }

    async fn kv_put(
        &self,
        account: &str,
        namespace: &str,
        key: &str,
        value: &[u8],
    ) -> StoreResult<Result<u64, QuotaExceeded>> {
        let account = account.to_string();
        let parts = vec![NsCommit {
            namespace: namespace.to_string(),
            writes: vec![(key.to_string(), Some(value.to_vec()))],
            ..Default::default()
        }];
        self.write(true, move |txn, cfg| {
            let (outcome, revisions) = commit_in(txn, cfg.quota, &account, &parts)?;
            Ok(match outcome {
                Commit::OverQuota(q) => Err(q),
                _ => Ok(revisions[0]),
            })
        })
        .await
    }

    async fn kv_commit(&self, account: &str, parts: Vec<NsCommit>) -> StoreResult<Commit> {
        let account = account.to_string();
        let durable = parts.iter().any(|p| !p.writes.is_empty());
        self.write(durable, move |txn, cfg| {
            Ok(commit_in(txn, cfg.quota, &account, &parts)?.0)
        })
        .await
    }

    async fn kv_commit_with_records(
        &self,
        account: &str,
        parts: Vec<NsCommit>,
        records: Vec<RecordChange>,
    ) -> StoreResult<Commit> {
        let account = account.to_string();
        let mut kinds: Vec<RecordKind> = records
            .iter()
            .map(|(k, _, _)| *k)
            .filter(|k| cached_kind(*k))
            .collect();
        kinds.dedup();
        let committed = self
            .write(true, move |txn, cfg| {
                let (commit, _) = commit_in(txn, cfg.quota, &account, &parts)?;
                if commit == Commit::Done {
                    let mut t = txn.open_table(RECORDS).map_err(backend)?;
                    for (kind, key, value) in &records {
                        let k = format!("{}\0{key}", kind.as_str());
                        match value {
                            Some(v) => t.insert(k.as_str(), v.as_slice()).map_err(backend)?,
                            None => t.remove(k.as_str()).map_err(backend)?,
                        };
                    }
                }
                Ok(commit)
            })
            .await;
        if !kinds.is_empty() {
            self.records
                .write()
                .expect("records lock")
                .invalidate(&kinds);
        }
        committed
    }

    async fn kv_delete(&self, account: &str, namespace: &str, key: &str) -> StoreResult<bool> {
        let k = format!("{account}\0{namespace}\0{key}");
        let ns = format!("{account}\0{namespace}");
        self.write(true, move |txn, _| {
            let mut t = txn.open_table(KV).map_err(backend)?;
            let old = t
                .remove(k.as_str())
                .map_err(backend)?
                .map(|v| split_entry(v.value()));
            let Some(o) = old else { return Ok(false) };
            let mut stats = txn.open_table(NS_STATS).map_err(backend)?;
            let (keys, bytes) = stats
                .get(ns.as_str())
                .map_err(backend)?
                .map_or((1, 0), |v| v.value());
            if keys <= 1 {
                stats.remove(ns.as_str()).map_err(backend)?;
            } else {
                stats
                    .insert(
                        ns.as_str(),
                        (keys - 1, bytes.saturating_sub(o.value.len() as u64)),
                    )
                    .map_err(backend)?;
            }
            Ok(true)
        })
        .await
    }

    async fn kv_keys(
        &self,
        account: &str,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let base = format!("{account}\0{namespace}\0");
        let start = format!("{base}{prefix}");
        let after = after.map(|a| format!("{base}{a}"));
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(KV).map_err(backend)?;
            let mut out = Vec::new();
            let lo = match &after {
                Some(a) if a.as_str() > start.as_str() => a.clone(),
                _ => start.clone(),
            };
            for entry in t.range(lo.as_str()..).map_err(backend)? {
                let (k, _) = entry.map_err(backend)?;
                let k = k.value();
                if !k.starts_with(start.as_str()) || out.len() >= limit {
                    break;
                }
                if after.as_deref() == Some(k) {
                    continue;
                }
                out.push(k[base.len()..].to_string());
            }
            Ok(out)
        })
        .await
    }

    async fn list_namespaces(&self, account: &str) -> StoreResult<Vec<NamespaceInfo>> {
        let prefix = format!("{account}\0");
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(NS_STATS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.range(prefix.as_str()..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let Some(name) = k.value().strip_prefix(prefix.as_str()) else {
                    break;
                };
                let (keys, bytes) = v.value();
                out.push(NamespaceInfo {
                    name: name.to_string(),
                    keys,
                    bytes,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn put_records(&self, changes: Vec<RecordChange>) -> StoreResult<()> {
        let mut kinds: Vec<RecordKind> = changes
            .iter()
            .map(|(k, _, _)| *k)
            .filter(|k| cached_kind(*k))
            .collect();
        kinds.dedup();
        let written = self
            .write(true, move |txn, _| {
                let mut t = txn.open_table(RECORDS).map_err(backend)?;
                for (kind, key, value) in &changes {
                    let k = format!("{}\0{key}", kind.as_str());
                    match value {
                        Some(v) => t.insert(k.as_str(), v.as_slice()).map_err(backend)?,
                        None => t.remove(k.as_str()).map_err(backend)?,
                    };
                }
                Ok(())
            })
            .await;
        // After the commit (or its failure): reads from here on go to the
        // file, and reads that began before cannot cache what they saw.
        if !kinds.is_empty() {
            self.records
                .write()
                .expect("records lock")
                .invalidate(&kinds);
        }
        written
    }

    async fn get_record(&self, kind: RecordKind, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let k = format!("{}\0{key}", kind.as_str());
        let slot = (kind, key.to_string());
        self.through_cache(
            cached_kind(kind),
            |c| c.gets.get(&slot).cloned(),
            |c, v| {
                c.gets.insert(slot.clone(), v);
            },
            move |db| {
                let txn = db.begin_read().map_err(backend)?;
                let t = txn.open_table(RECORDS).map_err(backend)?;
                Ok(t.get(k.as_str())
                    .map_err(backend)?
                    .map(|v| v.value().to_vec()))
            },
        )
        .await
    }

    async fn list_records(
        &self,
        kind: RecordKind,
        prefix: &str,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let start = format!("{}\0{prefix}", kind.as_str());
        let owned_prefix = prefix.to_string();
        let slot = (kind, prefix.to_string());
        self.through_cache(
            cached_kind(kind),
            |c| c.lists.get(&slot).cloned(),
            |c, v| {
                c.lists.insert(slot.clone(), v);
            },
            move |db| {
                let txn = db.begin_read().map_err(backend)?;
                let t = txn.open_table(RECORDS).map_err(backend)?;
                let mut out = Vec::new();
                for entry in t.range(start.as_str()..).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    let Some(key) = k.value().strip_prefix(start.as_str()) else {
                        break;
                    };
                    out.push((format!("{owned_prefix}{key}"), v.value().to_vec()));
                }
                Ok(out)
            },
        )
        .await
    }

    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        let id = activation.id.clone();
        // Trigger firings and sequences ran no one function: not indexed by one.
        let index_key = activation
            .function
            .as_ref()
            .map(|f| format!("{}/{}/{}", activation.account, f.hex(), activation.id));
        let account_key = format!("{}/{}", activation.account, activation.id);
        let value = encode(activation)?;
        let pending = self.pending.clone();
        let queued = pending.fetch_add(1, Ordering::SeqCst) + 1;
        let write = move |txn: &WriteTransaction, cfg: &StoreConfig| {
            {
                let mut acts = txn.open_table(ACTIVATIONS).map_err(backend)?;
                let mut by_fn = txn.open_table(ACT_BY_FN).map_err(backend)?;
                let mut by_account = txn.open_table(ACT_BY_ACCOUNT).map_err(backend)?;
                acts.insert(id.as_str(), value.as_slice())
                    .map_err(backend)?;
                if let Some(index_key) = &index_key {
                    by_fn.insert(index_key.as_str(), ()).map_err(backend)?;
                }
                by_account
                    .insert(account_key.as_str(), ())
                    .map_err(backend)?;
                // Retention: prune the oldest in batches.
                let len = acts.len().map_err(backend)?;
                if len > cfg.max_activations + 64 {
                    let excess = (len - cfg.max_activations) as usize;
                    let mut victims = Vec::with_capacity(excess);
                    for entry in acts.iter().map_err(backend)?.take(excess) {
                        let (k, v) = entry.map_err(backend)?;
                        // An unreadable record is pruned too (its index
                        // entries then point nowhere; listing skips those).
                        let (acc, f) = decode::<Activation>(v.value())
                            .map(|a| (a.account, a.function.map(|f| f.hex()).unwrap_or_default()))
                            .unwrap_or_default();
                        victims.push((k.value().to_string(), acc, f));
                    }
                    for (k, acc, f) in victims {
                        acts.remove(k.as_str()).map_err(backend)?;
                        by_fn
                            .remove(format!("{acc}/{f}/{k}").as_str())
                            .map_err(backend)?;
                        by_account
                            .remove(format!("{acc}/{k}").as_str())
                            .map_err(backend)?;
                    }
                }
            }
            Ok(())
        };
        if queued > MAX_PENDING_ACTIVATIONS {
            // The writer is behind: this caller waits for its record.
            let answer = self.submit(false, false, write);
            let answer = match answer {
                Ok(rx) => rx.await.unwrap_or_else(|_| {
                    Err(StoreError::Backend(
                        "the store's writer thread dropped a write".into(),
                    ))
                }),
                Err(e) => Err(e),
            };
            pending.fetch_sub(1, Ordering::SeqCst);
            return answer;
        }
        let settled = pending.clone();
        self.send_job(false, true, write, move |answer: StoreResult<()>| {
            settled.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = answer {
                tracing::warn!(error = %e, "store: an activation record was not stored");
            }
        })
        .inspect_err(|_| {
            pending.fetch_sub(1, Ordering::SeqCst);
        })
    }

    async fn get_activation(&self, id: &str) -> StoreResult<Option<Activation>> {
        self.settle_activations().await?;
        let id = id.to_string();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(ACTIVATIONS).map_err(backend)?;
            t.get(id.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn list_activations(&self, query: &ActivationQuery) -> StoreResult<Vec<Activation>> {
        self.settle_activations().await?;
        let q = query.clone();
        self.blocking(move |db, _| {
            let limit = q.limit.clamp(1, 1000);
            let txn = db.begin_read().map_err(backend)?;
            let acts = txn.open_table(ACTIVATIONS).map_err(backend)?;
            let mut out = Vec::new();
            let (table, prefix) = match &q.function {
                None => (
                    txn.open_table(ACT_BY_ACCOUNT).map_err(backend)?,
                    format!("{}/", q.account),
                ),
                Some(f) => (
                    txn.open_table(ACT_BY_FN).map_err(backend)?,
                    format!("{}/{}/", q.account, f.hex()),
                ),
            };
            let lo = prefix.clone();
            let hi = match &q.before {
                Some(b) => format!("{prefix}{b}"),
                // '0' sorts right after '/'.
                None => format!("{}0", &prefix[..prefix.len() - 1]),
            };
            for entry in table
                .range(lo.as_str()..hi.as_str())
                .map_err(backend)?
                .rev()
                .take(limit)
            {
                let (k, _) = entry.map_err(backend)?;
                let key = k.value();
                let id = key.rsplit_once('/').map_or(key, |(_, id)| id);
                if let Some(v) = acts.get(id).map_err(backend)? {
                    out.push(decode(v.value())?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.write(true, |_, _| Ok(())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orb_core::ActivationStatus;

    fn act(id: &str, account: &str, f: &FunctionId) -> Activation {
        Activation {
            id: id.into(),
            account: account.into(),
            function: Some(f.clone()),
            export: "greet".into(),
            status: ActivationStatus::Succeeded,
            start: "2026-01-01T00:00:00Z".into(),
            duration_us: 1,
            fuel: 2,
            result: Some(serde_json::json!("hi")),
            ..Default::default()
        }
    }

    fn q(
        account: &str,
        function: Option<&FunctionId>,
        limit: usize,
        before: Option<&str>,
    ) -> ActivationQuery {
        ActivationQuery {
            account: account.into(),
            function: function.cloned(),
            before: before.map(str::to_string),
            limit,
        }
    }

    #[tokio::test]
    async fn cached_ownership_follows_deletes_and_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let f = FunctionId::of(b"cached");
        let info = FunctionInfo {
            hash: f.clone(),
            size: 6,
            exports: vec![],
            created_at: "t".into(),
        };
        assert!(!s.owns("a", &f).await.unwrap());
        s.put_function("a", &info, Bytes::from_static(b"cached"))
            .await
            .unwrap();
        s.put_function("b", &info, Bytes::from_static(b"cached"))
            .await
            .unwrap();
        // The second check is answered from the cache.
        assert!(s.owns("a", &f).await.unwrap());
        assert!(s.owns("a", &f).await.unwrap());
        assert!(s.owns("b", &f).await.unwrap());
        assert_eq!(s.delete_function("a", &f).await.unwrap(), (true, false));
        assert!(
            !s.owns("a", &f).await.unwrap(),
            "a deleted ownership stays deleted"
        );
        assert!(
            s.owns("b", &f).await.unwrap(),
            "another account keeps its own"
        );
        s.put_function("a", &info, Bytes::from_static(b"cached"))
            .await
            .unwrap();
        assert!(s.owns("a", &f).await.unwrap());
        // Racing checks and deletes never leave a deleted ownership cached.
        for _ in 0..50 {
            let checks: Vec<_> = (0..4)
                .map(|_| {
                    let (s, f) = (s.clone(), f.clone());
                    tokio::spawn(async move { s.owns("a", &f).await.unwrap() })
                })
                .collect();
            s.delete_function("a", &f).await.unwrap();
            for c in checks {
                c.await.unwrap();
            }
            assert!(!s.owns("a", &f).await.unwrap());
            s.put_function("a", &info, Bytes::from_static(b"cached"))
                .await
                .unwrap();
            assert!(s.owns("a", &f).await.unwrap());
        }
    }

    #[tokio::test]
    async fn queued_activations_are_read_back_at_once_and_kept_by_flush() {
        let dir = tempfile::tempdir().unwrap();
        let f = FunctionId::of(b"queued");
        {
            let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
            for i in 0..300 {
                s.put_activation(&act(&format!("a{i:04}"), "acc", &f))
                    .await
                    .unwrap();
                if i % 100 == 99 {
                    // Each read sees every record queued before it.
                    let id = format!("a{i:04}");
                    assert_eq!(s.get_activation(&id).await.unwrap().unwrap().id, id);
                    let listed = s.list_activations(&q("acc", Some(&f), 1000, None)).await;
                    assert_eq!(listed.unwrap().len(), i + 1);
                }
            }
            for i in 300..400 {
                s.put_activation(&act(&format!("a{i:04}"), "acc", &f))
                    .await
                    .unwrap();
            }
            s.flush().await.unwrap();
            assert_eq!(s.pending.load(Ordering::SeqCst), 0);
        }
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let listed = s.list_activations(&q("acc", None, 1000, None)).await;
        assert_eq!(listed.unwrap().len(), 400, "every queued record survives");
    }

    #[tokio::test]
    async fn cached_records_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let put = |kind, key: &str, v: Option<&str>| {
            let s = s.clone();
            let change = (kind, key.to_string(), v.map(|v| v.as_bytes().to_vec()));
            async move { s.put_records(vec![change]).await.unwrap() }
        };
        let get = |kind, key: &'static str| {
            let s = s.clone();
            async move {
                s.get_record(kind, key)
                    .await
                    .unwrap()
                    .map(|v| String::from_utf8(v).unwrap())
            }
        };
        let list = |kind, prefix: &'static str| {
            let s = s.clone();
            async move {
                s.list_records(kind, prefix)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(k, v)| format!("{k}={}", String::from_utf8(v).unwrap()))
                    .collect::<Vec<_>>()
            }
        };
        use RecordKind::{Outbound, Queue, Secret};
        // A miss is cached too, and a write replaces it.
        assert_eq!(get(Outbound, "a").await, None);
        assert_eq!(get(Outbound, "a").await, None);
        put(Outbound, "a", Some("1")).await;
        assert_eq!(get(Outbound, "a").await.as_deref(), Some("1"));
        put(Outbound, "a", Some("2")).await;
        assert_eq!(get(Outbound, "a").await.as_deref(), Some("2"));
        put(Outbound, "a", None).await;
        assert_eq!(get(Outbound, "a").await, None);
        // Lists follow adds, changes and removals.
        assert!(list(Secret, "a/").await.is_empty());
        put(Secret, "a/x", Some("1")).await;
        put(Secret, "b/x", Some("9")).await;
        assert_eq!(list(Secret, "a/").await, ["a/x=1"]);
        put(Secret, "a/y", Some("2")).await;
        assert_eq!(list(Secret, "a/").await, ["a/x=1", "a/y=2"]);
        put(Secret, "a/x", None).await;
        assert_eq!(list(Secret, "a/").await, ["a/y=2"]);
        // Whitelists too.
        let f = FunctionId::of(b"w");
        assert_eq!(s.get_whitelist("a", "ns").await.unwrap(), None);
        s.set_whitelist("a", "ns", std::slice::from_ref(&f))
            .await
            .unwrap();
        assert_eq!(s.get_whitelist("a", "ns").await.unwrap(), Some(vec![f]));
        s.set_whitelist("a", "ns", &[]).await.unwrap();
        assert_eq!(s.get_whitelist("a", "ns").await.unwrap(), Some(vec![]));
        // Kinds that are not cached are read each time.
        put(Queue, "q", Some("1")).await;
        assert_eq!(get(Queue, "q").await.as_deref(), Some("1"));
        // Racing reads never leave a replaced value cached.
        for i in 0..50 {
            let reads: Vec<_> = (0..4).map(|_| tokio::spawn(get(Outbound, "r"))).collect();
            put(Outbound, "r", Some(&i.to_string())).await;
            for r in reads {
                r.await.unwrap();
            }
            assert_eq!(get(Outbound, "r").await, Some(i.to_string()));
        }
    }

    #[tokio::test]
    async fn functions_activations_and_ownership_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let f1 = FunctionId::of(b"one");
        let f2 = FunctionId::of(b"two");
        let info = FunctionInfo {
            hash: f1.clone(),
            size: 3,
            exports: vec![],
            created_at: "t".into(),
        };
        {
            let s = RedbStore::open(
                dir.path(),
                StoreConfig {
                    max_activations: 10,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(
                s.put_function("a", &info, Bytes::from_static(b"one"))
                    .await
                    .unwrap()
            );
            assert!(
                !s.put_function("a", &info, Bytes::from_static(b"one"))
                    .await
                    .unwrap()
            );
            assert!(
                s.put_function("b", &info, Bytes::from_static(b"one"))
                    .await
                    .unwrap()
            );
            for i in 0..100 {
                let f = if i % 2 == 0 { &f1 } else { &f2 };
                let acc = if i % 4 == 0 { "b" } else { "a" };
                s.put_activation(&act(&format!("a{i:04}"), acc, f))
                    .await
                    .unwrap();
            }
            s.add_revocations(&["r1".into()]).await.unwrap();
            s.set_whitelist("a", "app1", std::slice::from_ref(&f1))
                .await
                .unwrap();
            s.flush().await.unwrap();
        }
        let s = RedbStore::open(
            dir.path(),
            StoreConfig {
                max_activations: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            s.function_bytes(&f1).await.unwrap().unwrap().as_ref(),
            b"one"
        );
        assert_eq!(s.list_functions("a").await.unwrap().len(), 1);
        assert!(s.list_functions("c").await.unwrap().is_empty());
        assert!(s.owns("b", &f1).await.unwrap() && !s.owns("c", &f1).await.unwrap());
        assert_eq!(s.list_revocations().await.unwrap(), vec!["r1".to_string()]);
        assert_eq!(
            s.get_whitelist("a", "app1").await.unwrap(),
            Some(vec![f1.clone()])
        );
        assert_eq!(s.get_whitelist("b", "app1").await.unwrap(), None);

        let all_a = s.list_activations(&q("a", None, 1000, None)).await.unwrap();
        assert!(!all_a.is_empty() && all_a.iter().all(|x| x.account == "a"));
        assert_eq!(all_a[0].id, "a0099");
        let a_f1 = s
            .list_activations(&q("a", Some(&f1), 2, None))
            .await
            .unwrap();
        assert_eq!(
            a_f1.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
            ["a0098", "a0094"]
        );
        let page = s
            .list_activations(&q("a", Some(&f1), 1, Some("a0094")))
            .await
            .unwrap();
        assert_eq!(page[0].id, "a0090");
        let b_f1 = s
            .list_activations(&q("b", Some(&f1), 1000, None))
            .await
            .unwrap();
        assert!(
            b_f1.iter()
                .all(|x| x.account == "b" && x.function.as_ref() == Some(&f1))
        );

        // Ownership: the bytes stay until the last owner deletes.
        assert_eq!(s.delete_function("a", &f1).await.unwrap(), (true, false));
        assert!(s.function_bytes(&f1).await.unwrap().is_some());
        assert_eq!(s.delete_function("a", &f1).await.unwrap(), (false, false));
        assert_eq!(s.delete_function("b", &f1).await.unwrap(), (true, true));
        assert!(s.function_bytes(&f1).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn key_values_with_revisions_prefixes_and_stats() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(s.kv_put("a", "home", "t/1", b"20").await.unwrap(), Ok(1));
        assert_eq!(s.kv_put("a", "home", "t/1", b"21").await.unwrap(), Ok(2));
        s.kv_put("a", "home", "t/2", b"\"x\"")
            .await
            .unwrap()
            .unwrap();
        s.kv_put("a", "home", "u", b"true").await.unwrap().unwrap();
        s.kv_put("a", "homework", "t/9", b"1")
            .await
            .unwrap()
            .unwrap();
        s.kv_put("b", "home", "t/1", b"99").await.unwrap().unwrap();
        let e = s.kv_get("a", "home", "t/1").await.unwrap().unwrap();
        assert_eq!((e.value.as_slice(), e.revision), (&b"21"[..], 2));
        assert_eq!(
            s.kv_keys("a", "home", "t/", None, 10).await.unwrap(),
            ["t/1", "t/2"]
        );
        assert_eq!(
            s.kv_keys("a", "home", "", Some("t/1"), 10).await.unwrap(),
            ["t/2", "u"]
        );
        assert_eq!(s.kv_keys("a", "home", "", None, 1).await.unwrap(), ["t/1"]);
        let ns = s.list_namespaces("a").await.unwrap();
        assert_eq!(
            ns.iter()
                .map(|n| (n.name.as_str(), n.keys))
                .collect::<Vec<_>>(),
            [("home", 3), ("homework", 1)]
        );
        assert!(s.kv_delete("a", "home", "u").await.unwrap());
        assert!(!s.kv_delete("a", "home", "u").await.unwrap());
        assert!(s.kv_get("a", "home", "u").await.unwrap().is_none());
        assert_eq!(s.list_namespaces("a").await.unwrap()[0].keys, 2);
        assert_eq!(
            s.kv_get("b", "home", "t/1").await.unwrap().unwrap().value,
            b"99"
        );
    }

    #[tokio::test]
    async fn quotas_count_every_namespace_of_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let quota = Quota {
            max_keys: 3,
            max_bytes: 10,
        };
        let s = RedbStore::open(
            dir.path(),
            StoreConfig {
                quota,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(s.kv_put("a", "one", "k1", b"1").await.unwrap().is_ok());
        assert!(s.kv_put("a", "two", "k2", b"2").await.unwrap().is_ok());
        assert!(s.kv_put("a", "two", "k3", b"3").await.unwrap().is_ok());
        let over = s.kv_put("a", "one", "k4", b"4").await.unwrap().unwrap_err();
        assert_eq!((over.what, over.limit, over.would_be), ("keys", 3, 4));
        assert!(
            s.kv_get("a", "one", "k4").await.unwrap().is_none(),
            "nothing written"
        );
        // Replacing a key adds no key; growing past the bytes does not pass.
        assert!(
            s.kv_put("a", "one", "k1", b"12345678")
                .await
                .unwrap()
                .is_ok()
        );
        let over = s
            .kv_put("a", "one", "k1", b"123456789")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(over.what, "bytes");
        // Another account has its own quota; shrinking is always allowed.
        assert!(s.kv_put("b", "one", "k4", b"4").await.unwrap().is_ok());
        let writes = vec![
            ("k1".to_string(), None),
            ("k5".to_string(), Some(b"5".to_vec())),
        ];
        let parts = vec![NsCommit {
            namespace: "one".into(),
            writes,
            ..Default::default()
        }];
        assert_eq!(s.kv_commit("a", parts).await.unwrap(), Commit::Done);
    }

    fn part(ns: &str, reads: &[(&str, Option<u64>)], writes: &[(&str, &str)]) -> NsCommit {
        NsCommit {
            namespace: ns.into(),
            reads: reads.iter().map(|(k, r)| (k.to_string(), *r)).collect(),
            writes: writes
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
                .collect(),
            listed: None,
        }
    }

    #[tokio::test]
    async fn a_listed_key_set_that_changed_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        s.kv_put("a", "n", "k1", b"1").await.unwrap().unwrap();
        let listed = |keys: &[&str]| NsCommit {
            listed: Some(keys.iter().map(|k| k.to_string()).collect()),
            ..part("n", &[], &[("count", "1")])
        };
        assert_eq!(
            s.kv_commit("a", vec![listed(&["k1"])]).await.unwrap(),
            Commit::Done
        );
        // "count" now exists: a call that listed only k1 saw a different set.
        assert_eq!(
            s.kv_commit("a", vec![listed(&["k1"])]).await.unwrap(),
            Commit::Conflict
        );
        assert_eq!(
            s.kv_commit("a", vec![listed(&["count", "k1", "k2"])])
                .await
                .unwrap(),
            Commit::Conflict
        );
        assert_eq!(
            s.kv_commit("a", vec![listed(&["count", "k1"])])
                .await
                .unwrap(),
            Commit::Done
        );
    }

    #[tokio::test]
    async fn a_commit_over_two_namespaces_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let rev = s.kv_put("a", "one", "x", b"1").await.unwrap().unwrap();
        // The read in "one" is stale: nothing is written in "two" either.
        let stale = vec![
            part("one", &[("x", Some(rev + 1))], &[]),
            part("two", &[], &[("y", "2")]),
        ];
        assert_eq!(s.kv_commit("a", stale).await.unwrap(), Commit::Conflict);
        assert!(s.kv_get("a", "two", "y").await.unwrap().is_none());
        let fresh = vec![
            part("one", &[("x", Some(rev))], &[("x", "3")]),
            part("two", &[], &[("y", "2")]),
        ];
        assert_eq!(s.kv_commit("a", fresh).await.unwrap(), Commit::Done);
        assert_eq!(
            s.kv_get("a", "two", "y").await.unwrap().unwrap().value,
            b"2"
        );
        assert_eq!(
            s.kv_get("a", "one", "x").await.unwrap().unwrap().value,
            b"3"
        );
    }

    /// Many commits racing through the group-commit writer: each validates
    /// against the writes before it in the same batch, so exactly one of the
    /// commits that read the same revision wins, and refused commits leave
    /// the others' writes intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn group_commit_serializes_racing_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        let rev = s.kv_put("a", "n", "c", b"0").await.unwrap().unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let own = format!("own{i}");
                s.kv_commit(
                    "a",
                    vec![part(
                        "n",
                        &[("c", Some(rev))],
                        &[("c", "1"), (own.as_str(), "1")],
                    )],
                )
                .await
                .unwrap()
            }));
        }
        let mut done = 0;
        for t in tasks {
            if t.await.unwrap() == Commit::Done {
                done += 1;
            }
        }
        assert_eq!(done, 1, "exactly one commit read the current revision");
        let keys = s.kv_keys("a", "n", "own", None, 100).await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        let stats = s.list_namespaces("a").await.unwrap();
        assert_eq!(stats[0].keys, 2, "{stats:?}");
    }

    /// Duplicate keys and namespaces in one commit are merged (the last
    /// write wins) and keep the stats right; they never break the writer.
    #[tokio::test]
    async fn duplicate_writes_in_one_commit_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), StoreConfig::default()).unwrap();
        s.kv_put("a", "n", "x", b"1").await.unwrap().unwrap();
        let dup = NsCommit {
            namespace: "n".into(),
            writes: vec![
                ("x".into(), None),
                ("x".into(), None),
                ("y".into(), Some(b"1".to_vec())),
            ],
            ..Default::default()
        };
        let again = part("n", &[], &[("y", "22")]);
        assert_eq!(
            s.kv_commit("a", vec![dup, again]).await.unwrap(),
            Commit::Done
        );
        assert!(s.kv_get("a", "n", "x").await.unwrap().is_none());
        assert_eq!(s.kv_get("a", "n", "y").await.unwrap().unwrap().value, b"22");
        let stats = s.list_namespaces("a").await.unwrap();
        assert_eq!((stats[0].keys, stats[0].bytes), (1, 2), "{stats:?}");
        // The writer is still alive.
        s.kv_put("a", "n", "z", b"3").await.unwrap().unwrap();
    }
}
