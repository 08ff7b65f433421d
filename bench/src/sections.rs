//! Latency, throughput, hot-scope contention and history growth: each the
//! gate against the bare admission statement it cannot avoid, measured in the
//! same run, interleaved round by round (A B, then B A).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use startgate::{Actor, Gate, Outcome, RunFilter, StartRequest};

use crate::setup::{self, err, BenchResult};
use crate::stats::{process_cpu_us, Latencies, Rounds};
use crate::{Scale, Section, Target};

/// The bare statement, issued from the same process with the same driver, on
/// one dedicated connection per client: no pool, no pings, nothing but the
/// statement's own round trip. The database's own limit.
#[derive(Clone)]
pub struct Primitive {
    clients: Arc<Vec<tokio::sync::Mutex<Bare>>>,
}

enum Bare {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl Primitive {
    pub async fn open(url: &str, clients: usize) -> BenchResult<Primitive> {
        let mut conns = Vec::with_capacity(clients);
        for _ in 0..clients {
            let conn = if url.starts_with("postgres") {
                Bare::Pg(
                    PgConnection::connect(url)
                        .await
                        .map_err(err("primitive connect"))?,
                )
            } else {
                // The gate's SQLite settings: WAL, synchronous=NORMAL, busy timeout.
                let options: SqliteConnectOptions = url.parse().map_err(err("sqlite url"))?;
                let options = options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(60));
                Bare::Sqlite(options.connect().await.map_err(err("primitive connect"))?)
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
                sqlx::query_scalar(sql)
                    .bind(tenant)
                    .bind(scope)
                    .bind(operation)
                    .fetch_optional(c)
                    .await
            }
        }
        .map_err(err("primitive insert"))
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
                sqlx::query_as(setup::HOLDER)
                    .bind("bench")
                    .bind(scope)
                    .fetch_optional(c)
                    .await
            }
        }
        .map_err(err("primitive holder"))
    }

    pub async fn close(self) {
        if let Ok(clients) = Arc::try_unwrap(self.clients) {
            for conn in clients {
                let _ = match conn.into_inner() {
                    Bare::Pg(c) => c.close().await,
                    Bare::Sqlite(c) => c.close().await,
                };
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
        if store.label.contains("synchronous_commit=off") && !store.latency_only {
            targets.push(Target::new(
                "accepted-path start ≤ 1.5× the primitive (PostgreSQL, synchronous_commit=off, p50)",
                ratio.median() <= 1.5,
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
         both pay encryption on every call.",
        rows.join("\n"),
        scale.latency_ops,
        scale.rounds
    );
    Ok(Section::new(
        "1. Accepted-path start latency vs the primitive",
        markdown,
        targets,
    ))
}

/// 1b. Where the accepted path's time goes on PostgreSQL: the primitive, then
/// the run row in the real table, then the run row and its audit row, then the
/// whole start. Each step is one statement and one round trip; all four are
/// measured in every round, in rotating order.
pub async fn breakdown(stores: &[Store], scale: &Scale) -> BenchResult<Section> {
    let steps = ["primitive", "run row", "run row + audit row", "start"];
    let mut rows = Vec::new();
    for store in stores
        .iter()
        .filter(|s| s.url.starts_with("postgres") && !s.latency_only)
    {
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
                    1 => {
                        time_statement(&primitive, setup::STEP_RUN_ROW, "step1", ops.clone())
                            .await?
                    }
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
         round, steps in rotating order. Each step is one statement in one round trip from the same process \
         and driver: the primitive; the gate's run row into `operation_runs` (its real width, indexes and \
         constraints); the run row and its audit row in one statement; the whole `start` (adds the connection \
         lookup, five readiness checks, the fencing token and the client-side work).",
        steps.join(" | "),
        rows.join("\n"),
        scale.latency_ops,
        scale.rounds
    );
    Ok(Section::new(
        "1b. Where the accepted path's time goes (PostgreSQL)",
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

async fn concurrent<F, Fut>(clients: usize, total: usize, op: F) -> BenchResult<f64>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = BenchResult<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
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
    Ok(total as f64 / began.elapsed().as_secs_f64())
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
        let (mut gate_ops, mut prim_ops, mut ratio) =
            (Rounds::default(), Rounds::default(), Rounds::default());
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
            gate_ops.push(g);
            prim_ops.push(p);
            ratio.push(g / p);
        }
        rows.push(format!(
            "| {} | {} | {} | **{}** |",
            store.label,
            prim_ops.show(0),
            gate_ops.show(0),
            ratio.show(2)
        ));
        if store.url.starts_with("postgres") {
            targets.push(Target::new(
                &format!("8-client throughput ≥ 0.5× the primitive ({})", store.label),
                ratio.median() >= 0.5,
                format!("{:.2}×", ratio.median()),
            ));
        }
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | primitive starts/s | gate starts/s | ratio |\n|---|---|---|---|\n{}\n\n\
         8 concurrent clients (tasks sharing one pool of 8 connections) admit {} distinct scopes per round, \
         {} rounds after a warm-up round.",
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
        let (mut gate_ops, mut prim_ops, mut ratio) =
            (Rounds::default(), Rounds::default(), Rounds::default());
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
            gate_ops.push(g);
            prim_ops.push(p);
            ratio.push(g / p);
        }
        rows.push(format!(
            "| {} | {} | {} | **{}** | {} |",
            store.label,
            prim_ops.show(0),
            gate_ops.show(0),
            ratio.show(2),
            accepted_per_round
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if store.url.starts_with("postgres") {
            targets.push(Target::new(
                &format!(
                    "hot-scope decisions ≥ 0.5× primitive + holder lookup ({})",
                    store.label
                ),
                ratio.median() >= 0.5,
                format!("{:.2}×", ratio.median()),
            ));
        }
        primitive.close().await;
        gate.close().await;
    }
    let markdown = format!(
        "| store | primitive + holder lookup decisions/s | gate decisions/s | ratio | accepted runs per round |\n\
         |---|---|---|---|---|\n{}\n\n\
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
