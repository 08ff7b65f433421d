//! Latency, throughput, hot-scope contention and history growth: each the
//! gate against the bare admission statement it cannot avoid, measured in the
//! same run, interleaved round by round (A B, then B A).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use startgate::{Actor, Gate, Outcome, RunFilter, StartRequest};

use crate::setup::{self, err, BenchResult};
use crate::stats::{process_cpu_us, server_cpu_us, Latencies, Rounds};
use crate::{Scale, Section, Target};

/// Which SQLite VFS the primitive's connection used, for the tables' notes.
fn primitive_vfs() -> String {
    match std::env::var("STARTGATE_BENCH_PRIMITIVE_VFS") {
        Ok(vfs) => format!(
            "On SQLite the primitive's connection (and the steps' of table 1b) opens with the VFS `{vfs}` \
             (`STARTGATE_BENCH_PRIMITIVE_VFS`)."
        ),
        Err(_) => "On SQLite the gate's connections write a commit's WAL frames in one system call \
                   (its `startgate-unix` VFS, docs/DESIGN.md); the primitive's connection (and the steps' of \
                   table 1b) uses SQLite's own `unix` VFS, as a bare statement would \
                   (`STARTGATE_BENCH_PRIMITIVE_VFS=startgate-unix` measures it through the gate's)."
            .to_string(),
    }
}

/// The bare statement, issued from the same process with the same driver as
/// the gate's, on one dedicated connection per client: no pool, no pings,
/// nothing but the statement's own round trip. The database's own limit. On
/// SQLite that is a prepared statement run in the calling thread (rusqlite),
/// as the gate runs its own.
#[derive(Clone)]
pub struct Primitive {
    clients: Arc<Vec<tokio::sync::Mutex<Bare>>>,
}

enum Bare {
    Pg(PgConnection),
    Sqlite(rusqlite::Connection),
}

/// A statement for rusqlite: SQLite numbers parameters `?N`.
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Primitive {
    pub async fn open(url: &str, clients: usize) -> BenchResult<Primitive> {
        // SQLite admits one writer at a time: the primitive's clients take
        // turns on one connection, as the gate's writers queue in the
        // process, rather than sleep in SQLite's busy handler.
        let clients = if url.starts_with("postgres") {
            clients
        } else {
            1
        };
        let mut conns = Vec::with_capacity(clients);
        for _ in 0..clients {
            let conn = if url.starts_with("postgres") {
                Bare::Pg(
                    PgConnection::connect(url)
                        .await
                        .map_err(err("primitive connect"))?,
                )
            } else {
                // The gate's SQLite settings: WAL, synchronous=NORMAL.
                let path = url.trim_start_matches("sqlite://");
                // SQLite's own `unix` VFS unless STARTGATE_BENCH_PRIMITIVE_VFS
                // names another registered one, such as the gate's
                // `startgate-unix` (registered once the gate has opened).
                let conn = match std::env::var("STARTGATE_BENCH_PRIMITIVE_VFS") {
                    Ok(vfs) => rusqlite::Connection::open_with_flags_and_vfs(
                        path,
                        rusqlite::OpenFlags::default(),
                        &vfs,
                    ),
                    Err(_) => rusqlite::Connection::open(path),
                }
                .map_err(err("primitive connect"))?;
                conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                    .map_err(err("primitive pragmas"))?;
                conn.busy_timeout(Duration::from_secs(60))
                    .map_err(err("primitive busy timeout"))?;
                Bare::Sqlite(conn)
            };
            conns.push(tokio::sync::Mutex::new(conn));
        }
        Ok(Primitive {
            clients: Arc::new(conns),
        })
    }

    /// The admission from `client`'s connection: `Some(id)` when admitted.
    pub async fn insert(
        &self,
        client: usize,
        scope: &str,
        operation: &str,
    ) -> BenchResult<Option<i64>> {
        self.insert_with(setup::PRIMITIVE, client, "bench", scope, operation)
            .await
    }

    /// `sql` (parameters: tenant, scope, operation) from `client`'s connection.
    pub async fn insert_with(
        &self,
        sql: &str,
        client: usize,
        tenant: &str,
        scope: &str,
        operation: &str,
    ) -> BenchResult<Option<i64>> {
        let mut conn = self.clients[client % self.clients.len()].lock().await;
        match &mut *conn {
            Bare::Pg(c) => {
                sqlx::query_scalar(sql)
                    .bind(tenant)
                    .bind(scope)
                    .bind(operation)
                    .fetch_optional(c)
                    .await
            }
            Bare::Sqlite(c) => {
                let mut statement = c
                    .prepare_cached(&numbered(sql))
                    .map_err(err("primitive prepare"))?;
                let mut rows = statement
                    .query(rusqlite::params![tenant, scope, operation])
                    .map_err(err("primitive insert"))?;
                return match rows.next().map_err(err("primitive insert"))? {
                    Some(row) => Ok(Some(row.get(0).map_err(err("primitive id"))?)),
                    None => Ok(None),
                };
            }
        }
        .map_err(err("primitive insert"))
    }

    /// SQLite: the run row and its audit row in one `BEGIN IMMEDIATE`
    /// transaction from `client`'s connection, as the gate writes them.
    pub fn run_and_audit_sqlite(
        &self,
        client: usize,
        tenant: &str,
        scope: &str,
    ) -> BenchResult<i64> {
        let mut conn = self.clients[client % self.clients.len()]
            .try_lock()
            .map_err(err("primitive connection busy"))?;
        let Bare::Sqlite(c) = &mut *conn else {
            return Err("run_and_audit_sqlite on PostgreSQL".into());
        };
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err("begin"))?;
        let id: i64 = tx
            .prepare_cached(setup::STEP_RUN_ROW_SQLITE)
            .and_then(|mut s| {
                s.query_row(rusqlite::params![tenant, scope, "inventory.sync"], |r| {
                    r.get(0)
                })
            })
            .map_err(err("run row"))?;
        tx.prepare_cached(setup::STEP_AUDIT_ROW_SQLITE)
            .and_then(|mut s| s.execute(rusqlite::params![tenant, scope, "inventory.sync", id]))
            .map_err(err("audit row"))?;
        tx.commit().map_err(err("commit"))?;
        Ok(id)
    }

    /// The holder lookup a refused start also needs.
    pub async fn holder(
        &self,
        client: usize,
        scope: &str,
    ) -> BenchResult<Option<(i64, String, String)>> {
        let mut conn = self.clients[client % self.clients.len()].lock().await;
        match &mut *conn {
            Bare::Pg(c) => {
                sqlx::query_as(setup::HOLDER)
                    .bind("bench")
                    .bind(scope)
                    .fetch_optional(c)
                    .await
            }
            Bare::Sqlite(c) => {
                let mut statement = c
                    .prepare_cached(&numbered(setup::HOLDER))
                    .map_err(err("primitive prepare"))?;
                let mut rows = statement
                    .query(rusqlite::params!["bench", scope])
                    .map_err(err("primitive holder"))?;
                return match rows.next().map_err(err("primitive holder"))? {
                    Some(row) => Ok(Some((
                        row.get(0).map_err(err("holder"))?,
                        row.get(1).map_err(err("holder"))?,
                        row.get(2).map_err(err("holder"))?,
                    ))),
                    None => Ok(None),
                };
            }
        }
        .map_err(err("primitive holder"))
    }

    pub async fn close(self) {
        if let Ok(clients) = Arc::try_unwrap(self.clients) {
            for conn in clients {
                match conn.into_inner() {
                    Bare::Pg(c) => {
                        let _ = c.close().await;
                    }
                    Bare::Sqlite(c) => drop(c),
                }
            }
        }
    }
}

fn actor() -> Actor {
    Actor::member("bench", ["inventory.sync", "compliance.read"])
}

fn request(operation: &str, scope: usize) -> StartRequest {
    StartRequest::new(operation, "bench", actor()).with_connection(format!("c-{scope}"))
}

/// One accepted start; anything else is a broken benchmark.
pub async fn accepted_start(gate: &Gate, scope: usize) -> BenchResult<()> {
    let result = gate
        .start(&request("inventory.sync", scope))
        .await
        .map_err(err("start"))?;
    if result.outcome != Outcome::Accepted {
        return Err(format!(
            "scope c-{scope}: expected accepted, got {}",
            result.outcome
        ));
    }
    Ok(())
}

async fn time_gate(gate: &Gate, scopes: std::ops::Range<usize>) -> BenchResult<Latencies> {
    let mut latencies = Latencies::default();
    let (cpu, ops) = (process_cpu_us(), scopes.len());
    for scope in scopes {
        let began = Instant::now();
        accepted_start(gate, scope).await?;
        latencies.record(began.elapsed());
    }
    latencies.1 = (process_cpu_us() - cpu) / ops.max(1) as f64;
    Ok(latencies)
}

/// The SQLite run-and-audit step on fresh scopes, one at a time.
fn time_run_and_audit_sqlite(
    primitive: &Primitive,
    scopes: std::ops::Range<usize>,
) -> BenchResult<Latencies> {
    let mut latencies = Latencies::default();
    let (cpu, ops) = (process_cpu_us(), scopes.len());
    for scope in scopes {
        let name = format!("c-{scope}");
        let began = Instant::now();
        primitive.run_and_audit_sqlite(0, "step2", &name)?;
        latencies.record(began.elapsed());
    }
    latencies.1 = (process_cpu_us() - cpu) / ops.max(1) as f64;
    Ok(latencies)
}

async fn time_primitive(
    primitive: &Primitive,
    scopes: std::ops::Range<usize>,
) -> BenchResult<Latencies> {
    time_statement(primitive, setup::PRIMITIVE, "bench", scopes).await
}

/// `sql` on fresh scopes, one at a time, from the primitive's connection.
async fn time_statement(
    primitive: &Primitive,
    sql: &str,
    tenant: &str,
    scopes: std::ops::Range<usize>,
) -> BenchResult<Latencies> {
    let mut latencies = Latencies::default();
    let (cpu, ops) = (process_cpu_us(), scopes.len());
    for scope in scopes {
        let name = format!("c-{scope}");
        let began = Instant::now();
        let admitted = primitive
            .insert_with(sql, 0, tenant, &name, "inventory.sync")
            .await?;
        latencies.record(began.elapsed());
        if admitted.is_none() {
            return Err(format!("primitive: scope {name} was not free"));
        }
    }
    latencies.1 = (process_cpu_us() - cpu) / ops.max(1) as f64;
    Ok(latencies)
}

/// A store to measure on.
pub struct Store {
    pub label: String,
    pub url: String,
    /// Measured in the latency table only (the TLS store: what encryption
    /// adds to one call; the other tables compare stores without it).
    pub latency_only: bool,
}

/// 1. Accepted-path start latency against the primitive, one client.
pub async fn latency(stores: &[Store], scale: &Scale) -> BenchResult<Section> {
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for store in stores {
        let gate = setup::prepared_gate(&store.url, scale.latency_ops + 100, 1).await?;
        let primitive = Primitive::open(&store.url, 1).await?;
        // Warm up statement caches and the buffer pool.
        time_gate(&gate, 0..100).await?;
        time_primitive(&primitive, 0..100).await?;
        let (mut gate_cpu, mut prim_cpu) = (Rounds::default(), Rounds::default());
        let (mut gate_p50, mut gate_p99, mut prim_p50, mut prim_p99, mut ratio, mut ratio_p99) = (
            Rounds::default(),
            Rounds::default(),
            Rounds::default(),
            Rounds::default(),
            Rounds::default(),
            Rounds::default(),
        );
        for round in 0..scale.rounds {
            setup::reset(&store.url).await?;
            let ops = 0..scale.latency_ops;
            let (g, p) = in_turn(
                round,
                || time_gate(&gate, ops.clone()),
                || time_primitive(&primitive, ops.clone()),
            )
            .await?;
            gate_cpu.push(g.1);
            prim_cpu.push(p.1);
            gate_p50.push(g.p(0.5));
            gate_p99.push(g.p(0.99));
            prim_p50.push(p.p(0.5));
            prim_p99.push(p.p(0.99));
            ratio.push(g.p(0.5) / p.p(0.5));
            ratio_p99.push(g.p(0.99) / p.p(0.99));
        }
        rows.push(format!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} |",
            store.label,
            prim_p50.show(0),
            prim_p99.show(0),
            gate_p50.show(0),
            gate_p99.show(0),
            ratio.show(2),
            ratio_p99.show(2),
            prim_cpu.show(0),
            gate_cpu.show(0)
        ));
        if let Some((limit, _, _)) = goals(store) {
            targets.push(Target::new(
                &format!(
                    "accepted-path start p50 ≤ {limit}× the primitive ({})",
                    store.label
                ),
                ratio.median() <= limit,
                format!("{:.2}×", ratio.median()),
            ));
        }
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | primitive p50 µs | primitive p99 µs | start p50 µs | start p99 µs | ratio p50 | ratio p99 | primitive client CPU µs/op | start client CPU µs/op |\n\
         |---|---|---|---|---|---|---|---|---|\n{}\n\n\
         One client, {} accepted starts per round on fresh scopes, {} rounds (median, min–max). \
         The primitive is `INSERT … ON CONFLICT (scope) WHERE active DO NOTHING RETURNING id` on a table \
         with the same partial unique index, from the same process and driver. A start also reads the \
         connection, runs five readiness checks, computes the fencing token and writes the audit row. \
         Over TLS (`sslmode=require`, a pooled connection: the handshake is paid once per connection) \
         both pay encryption on every call. {}",
        rows.join("\n"),
        scale.latency_ops,
        scale.rounds,
        primitive_vfs()
    );
    Ok(Section::new(
        "1. Accepted-path start latency vs the primitive",
        markdown,
        targets,
    ))
}

/// 1b. Where the accepted path's time goes: the primitive, then the run row
/// in the real table, then the run row and its audit row, then the whole
/// start. On PostgreSQL each step is one statement and one round trip; on
/// SQLite the run and audit rows are one transaction of two statements. All
/// four are measured in every round, in rotating order.
pub async fn breakdown(stores: &[Store], scale: &Scale) -> BenchResult<Section> {
    let steps = ["primitive", "run row", "run row + audit row", "start"];
    let mut rows = Vec::new();
    for store in stores.iter().filter(|s| !s.latency_only) {
        let sqlite = !store.url.starts_with("postgres");
        let gate = setup::prepared_gate(&store.url, scale.latency_ops + 100, 1).await?;
        let primitive = Primitive::open(&store.url, 1).await?;
        let mut p50: Vec<Rounds> = vec![Rounds::default(); steps.len()];
        for round in 0..scale.rounds + 1 {
            setup::reset(&store.url).await?;
            let ops = 0..scale.latency_ops;
            let mut this_round = vec![0.0; steps.len()];
            for k in 0..steps.len() {
                let step = (k + round) % steps.len();
                // Each step on its own tenant, so no step finds another's scope held.
                let latencies = match step {
                    0 => time_primitive(&primitive, ops.clone()).await?,
                    1 if sqlite => {
                        time_statement(&primitive, setup::STEP_RUN_ROW_SQLITE, "step1", ops.clone())
                            .await?
                    }
                    1 => {
                        time_statement(&primitive, setup::STEP_RUN_ROW, "step1", ops.clone())
                            .await?
                    }
                    2 if sqlite => time_run_and_audit_sqlite(&primitive, ops.clone())?,
                    2 => {
                        time_statement(&primitive, setup::STEP_RUN_AND_AUDIT, "step2", ops.clone())
                            .await?
                    }
                    _ => time_gate(&gate, ops.clone()).await?,
                };
                this_round[step] = latencies.p(0.5);
            }
            if round > 0 {
                for (i, value) in this_round.into_iter().enumerate() {
                    p50[i].push(value);
                }
            }
        }
        let cells: Vec<String> = p50.iter().map(|r| r.show(0)).collect();
        let base = p50[0].median();
        let ratios: Vec<String> = p50
            .iter()
            .map(|r| format!("{:.2}×", r.median() / base))
            .collect();
        rows.push(format!("| {} | {} |", store.label, cells.join(" | ")));
        rows.push(format!(
            "| ratio to the primitive | {} |",
            ratios.join(" | ")
        ));
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | {} |\n|---|---|---|---|---|\n{}\n\n\
         p50 µs, one client, {} statements per step per round on fresh scopes, {} rounds after a warm-up \
         round, steps in rotating order, from the same process and driver: the primitive; the gate's run row \
         into `operation_runs` (its real width, indexes and constraints); the run row and its audit row (on \
         PostgreSQL one statement, one round trip; on SQLite one `BEGIN IMMEDIATE` transaction of two \
         statements); the whole `start` (adds the connection lookup, five readiness checks, the fencing token \
         and the client-side work). {}",
        steps.join(" | "),
        rows.join("\n"),
        scale.latency_ops,
        scale.rounds,
        primitive_vfs()
    );
    Ok(Section::new(
        "1b. Where the accepted path's time goes",
        markdown,
        Vec::new(),
    ))
}

/// Runs `total` operations from `clients` tasks (`op(client, i)`); returns
/// operations per second.
/// Measures the gate and its baseline in the order the round says (primitive
/// first in even rounds, gate first in odd ones), so drift over a run
/// favours neither; returns (gate, primitive).
async fn in_turn<G, GF, P, PF, T>(round: usize, gate: G, primitive: P) -> BenchResult<(T, T)>
where
    G: FnOnce() -> GF,
    GF: Future<Output = BenchResult<T>>,
    P: FnOnce() -> PF,
    PF: Future<Output = BenchResult<T>>,
{
    if round.is_multiple_of(2) {
        let p = primitive().await?;
        Ok((gate().await?, p))
    } else {
        let g = gate().await?;
        Ok((g, primitive().await?))
    }
}

/// Operations per second of a concurrent batch, and the CPU each operation
/// cost the client (this process) and the PostgreSQL server.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    per_second: f64,
    client_cpu: f64,
    server_cpu: f64,
}

async fn concurrent<F, Fut>(clients: usize, total: usize, op: F) -> BenchResult<Throughput>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = BenchResult<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let (client, server) = (process_cpu_us(), server_cpu_us());
    let began = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    return Ok::<(), String>(());
                }
                op(client, i).await?;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(err("task"))??;
    }
    let per_second = total as f64 / began.elapsed().as_secs_f64();
    let ops = total.max(1) as f64;
    Ok(Throughput {
        per_second,
        client_cpu: (process_cpu_us() - client) / ops,
        server_cpu: (server_cpu_us() - server) / ops,
    })
}

/// The rounds of a concurrent benchmark: rates and CPU per operation, for
/// the gate and its baseline, and their ratio.
#[derive(Default)]
struct Concurrent {
    gate: Rounds,
    primitive: Rounds,
    ratio: Rounds,
    gate_cpu: (Rounds, Rounds),
    primitive_cpu: (Rounds, Rounds),
}

impl Concurrent {
    fn push(&mut self, gate: Throughput, primitive: Throughput) {
        self.gate.push(gate.per_second);
        self.primitive.push(primitive.per_second);
        self.ratio.push(gate.per_second / primitive.per_second);
        self.gate_cpu.0.push(gate.client_cpu);
        self.gate_cpu.1.push(gate.server_cpu);
        self.primitive_cpu.0.push(primitive.client_cpu);
        self.primitive_cpu.1.push(primitive.server_cpu);
    }

    /// `client / server` µs per operation (SQLite: the server is the client).
    fn cpu(cpu: &(Rounds, Rounds), postgres: bool) -> String {
        if postgres {
            format!("{:.0} / {:.0}", cpu.0.median(), cpu.1.median())
        } else {
            format!("{:.0} / —", cpu.0.median())
        }
    }

    /// The row's cells after the store's name.
    fn cells(&self, postgres: bool) -> String {
        format!(
            "{} | {} | **{}** | {} | {}",
            self.primitive.show(0),
            self.gate.show(0),
            self.ratio.show(2),
            Concurrent::cpu(&self.primitive_cpu, postgres),
            Concurrent::cpu(&self.gate_cpu, postgres)
        )
    }
}

/// The targets per store: (latency ratio ≤, throughput ratio ≥,
/// hot-scope ratio ≥). None for stores measured for latency only.
fn goals(store: &Store) -> Option<(f64, f64, f64)> {
    if store.latency_only {
        None
    } else if store.label.contains("synchronous_commit=on") {
        Some((1.3, 0.6, 0.6))
    } else if store.label.contains("synchronous_commit=off") {
        Some((1.5, 0.5, 0.6))
    } else {
        Some((2.0, 0.5, 0.5))
    }
}

/// 2. Throughput with 8 clients over 1,000 distinct scopes.
pub async fn throughput(stores: &[Store], scale: &Scale) -> BenchResult<Section> {
    const CLIENTS: usize = 8;
    let scopes = scale.throughput_scopes;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for store in stores.iter().filter(|s| !s.latency_only) {
        let gate = setup::prepared_gate(&store.url, scopes, CLIENTS as u32).await?;
        let primitive = Primitive::open(&store.url, CLIENTS).await?;
        let mut measured = Concurrent::default();
        for round in 0..scale.rounds + 1 {
            setup::reset(&store.url).await?;
            let run_gate = {
                let gate = gate.clone();
                move || {
                    let gate = gate.clone();
                    concurrent(CLIENTS, scopes, move |_, i| {
                        let gate = gate.clone();
                        async move { accepted_start(&gate, i).await }
                    })
                }
            };
            let run_primitive = {
                let primitive = primitive.clone();
                move || {
                    let primitive = primitive.clone();
                    concurrent(CLIENTS, scopes, move |client, i| {
                        let primitive = primitive.clone();
                        async move {
                            match primitive
                                .insert(client, &format!("c-{i}"), "inventory.sync")
                                .await?
                            {
                                Some(_) => Ok(()),
                                None => Err(format!("primitive: c-{i} was not free")),
                            }
                        }
                    })
                }
            };
            let (g, p) = in_turn(round, run_gate, run_primitive).await?;
            if round == 0 {
                continue; // warm-up round
            }
            measured.push(g, p);
        }
        let postgres = store.url.starts_with("postgres");
        rows.push(format!(
            "| {} | {} |",
            store.label,
            measured.cells(postgres)
        ));
        if let Some((_, limit, _)) = goals(store) {
            let ratio = measured.ratio.median();
            targets.push(Target::new(
                &format!(
                    "8-client throughput ≥ {limit}× the primitive ({})",
                    store.label
                ),
                ratio >= limit,
                format!("{ratio:.2}×"),
            ));
        }
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | primitive starts/s | gate starts/s | ratio | primitive CPU µs/op (client / server) | gate CPU µs/op (client / server) |\n\
         |---|---|---|---|---|---|\n{}\n\n\
         8 concurrent clients (tasks sharing one pool of 8 connections) admit {} distinct scopes per round, \
         {} rounds after a warm-up round. CPU per operation: this process, and PostgreSQL's processes \
         (SQLite runs in this process); client and server share the machine's 2 cores. The SQLite \
         primitive's clients take turns on one connection (SQLite admits one writer at a time), as the \
         gate's writers queue in the process.",
        rows.join("\n"),
        scopes,
        scale.rounds
    );
    Ok(Section::new(
        "2. Throughput: 8 clients, distinct scopes",
        markdown,
        targets,
    ))
}

/// 3. Hot-scope contention: 8 clients on 10 hot scopes, two operations.
pub async fn hot_scopes(stores: &[Store], scale: &Scale) -> BenchResult<Section> {
    const CLIENTS: usize = 8;
    const HOT: usize = 10;
    let total = scale.hot_decisions;
    let mut rows = Vec::new();
    let mut targets = Vec::new();
    for store in stores.iter().filter(|s| !s.latency_only) {
        let gate = setup::prepared_gate(&store.url, HOT, CLIENTS as u32).await?;
        let primitive = Primitive::open(&store.url, CLIENTS).await?;
        let mut measured = Concurrent::default();
        let mut accepted_per_round = Vec::new();
        for round in 0..scale.rounds + 1 {
            setup::reset(&store.url).await?;
            let accepted = Arc::new(AtomicUsize::new(0));
            let pick = |i: usize| {
                let operation = if (i / HOT).is_multiple_of(2) {
                    "inventory.sync"
                } else {
                    "compliance.snapshot"
                };
                (operation, i.wrapping_mul(7919) % HOT)
            };
            let run_gate = {
                let (gate, accepted) = (gate.clone(), accepted.clone());
                move || {
                    concurrent(CLIENTS, total, move |_, i| {
                        let (gate, accepted) = (gate.clone(), accepted.clone());
                        async move {
                            let (operation, scope) = pick(i);
                            let result = gate
                                .start(&request(operation, scope))
                                .await
                                .map_err(err("start"))?;
                            if result.outcome == Outcome::Accepted {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(())
                        }
                    })
                }
            };
            let run_primitive = {
                let primitive = primitive.clone();
                move || {
                    concurrent(CLIENTS, total, move |client, i| {
                        let primitive = primitive.clone();
                        async move {
                            let (operation, scope) = pick(i);
                            let scope = format!("c-{scope}");
                            if primitive.insert(client, &scope, operation).await?.is_none() {
                                primitive.holder(client, &scope).await?;
                            }
                            Ok(())
                        }
                    })
                }
            };
            let (g, p) = in_turn(round, run_gate, run_primitive).await?;
            let active = gate
                .list_runs(&RunFilter {
                    active: true,
                    limit: Some(1000),
                    ..RunFilter::default()
                })
                .await
                .map_err(err("list"))?;
            if accepted.load(Ordering::SeqCst) != HOT || active.len() != HOT {
                return Err(format!(
                    "hot scopes: {} accepted results and {} active runs, expected exactly {HOT}",
                    accepted.load(Ordering::SeqCst),
                    active.len()
                ));
            }
            accepted_per_round.push(active.len());
            if round == 0 {
                continue;
            }
            measured.push(g, p);
        }
        let postgres = store.url.starts_with("postgres");
        rows.push(format!(
            "| {} | {} | {} |",
            store.label,
            measured.cells(postgres),
            accepted_per_round
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some((_, _, limit)) = goals(store) {
            let ratio = measured.ratio.median();
            targets.push(Target::new(
                &format!(
                    "hot-scope decisions ≥ {limit}× primitive + holder lookup ({})",
                    store.label
                ),
                ratio >= limit,
                format!("{ratio:.2}×"),
            ));
        }
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | primitive + holder lookup decisions/s | gate decisions/s | ratio | primitive CPU µs/op (client / server) | gate CPU µs/op (client / server) | accepted runs per round |\n\
         |---|---|---|---|---|---|---|\n{}\n\n\
         8 clients, {} decisions per round over 10 hot scopes and two operations (so most are deduped or \
         scope busy), nothing completes; {} rounds after a warm-up. Every round admits exactly one run per \
         scope (checked: accepted results and active runs both equal 10). The baseline is the primitive \
         insert followed, when refused, by the holder lookup a refused start must answer with.",
        rows.join("\n"),
        total,
        scale.rounds
    );
    Ok(Section::new("3. Hot-scope contention", markdown, targets))
}

/// Bulk-loads `count` terminal runs (and their audit rows) as history.
async fn load_history(url: &str, count: usize) -> BenchResult<()> {
    let runs = format!(
        "INSERT INTO startgate.operation_runs (operation, tenant_id, provider_connection_id, status, initiator, actor_id, \
         params, fencing_token, scope_token_at_end, lease_us, tenant_active, summary, created_at, \
         status_changed_at, queued_at, started_at, finished_at) \
         SELECT 'inventory.sync', 'history-' || (g % 1000), 'graph', 'succeeded', 'schedule', 'cron', '{{\"full\":true}}', \
         g / 1000 + 1, g / 1000 + 1, 300000000, TRUE, '{{\"items\":1200}}', 1700000000000000 + g, \
         1700000000000000 + g, 1700000000000000 + g, 1700000000000000 + g, 1700000000000000 + g + 1000 \
         FROM generate_series(0, {}) g",
        count - 1
    );
    let attempts = "INSERT INTO startgate.start_attempts (attempted_at, source, operation, tenant_id, provider_connection_id, \
                    actor_id, initiator, outcome, run_id) \
                    SELECT created_at, 'start', operation, tenant_id, provider_connection_id, actor_id, initiator, \
                    'accepted', id FROM startgate.operation_runs";
    setup::execute_pg(url, &[&runs, attempts]).await?;
    setup::execute_pg(url, &["VACUUM ANALYZE"]).await
}

/// 4. History growth: start latency with 1k, 100k and 1M terminal runs.
pub async fn history(admin_url: &str, scale: &Scale) -> BenchResult<Section> {
    let mut dbs = Vec::new();
    let scopes = scale.rounds * scale.history_ops + 100;
    for size in &scale.history_sizes {
        let url =
            setup::fresh_pg_database(admin_url, &format!("startgate_bench_history_{size}"), false)
                .await?;
        let gate = setup::prepared_gate(&url, scopes, 1).await?;
        load_history(&url, *size).await?;
        time_gate(&gate, 0..100).await?; // warm
        dbs.push((*size, url, gate));
    }
    let mut p50: Vec<Rounds> = vec![Rounds::default(); dbs.len()];
    let mut p99: Vec<Rounds> = vec![Rounds::default(); dbs.len()];
    let mut growth = Rounds::default();
    for round in 0..scale.rounds {
        let first = 100 + round * scale.history_ops;
        let mut this_round = vec![0.0; dbs.len()];
        // Rotate the order each round so no database always goes first.
        for k in 0..dbs.len() {
            let i = (k + round) % dbs.len();
            let latencies = time_gate(&dbs[i].2, first..first + scale.history_ops).await?;
            this_round[i] = latencies.p(0.5);
            p50[i].push(latencies.p(0.5));
            p99[i].push(latencies.p(0.99));
        }
        growth.push(this_round[dbs.len() - 1] / this_round[0]);
    }
    let rows: Vec<String> = dbs
        .iter()
        .enumerate()
        .map(|(i, (size, _, _))| format!("| {size} | {} | {} |", p50[i].show(0), p99[i].show(0)))
        .collect();
    for (size, _, gate) in &dbs {
        gate.close().await;
        setup::drop_pg_database(admin_url, &format!("startgate_bench_history_{size}")).await?;
    }
    let largest = scale.history_sizes.last().copied().unwrap_or(0);
    let smallest = scale.history_sizes.first().copied().unwrap_or(0);
    let target = Target::new(
        "history growth: start p50 with the largest history ≤ 1.2× the smallest",
        growth.median() <= 1.2,
        format!("{:.2}×", growth.median()),
    );
    let markdown = format!(
        "| terminal runs in the table | start p50 µs | start p99 µs |\n|---|---|---|\n{}\n\n\
         Ratio of the p50 with {largest} to {smallest} terminal runs: **{}**. PostgreSQL \
         (synchronous_commit=off, to expose index and CPU cost rather than fsync), one database per size \
         loaded with terminal runs over 1,000 scopes plus their audit rows, then `VACUUM ANALYZE`; \
         {} accepted starts per database per round, databases measured in rotating order, {} rounds. \
         Admission only touches indexes on active rows and one descent of the fencing-token index.",
        rows.join("\n"),
        growth.show(2),
        scale.history_ops,
        scale.rounds
    );
    Ok(Section::new("4. History growth", markdown, vec![target]))
}
