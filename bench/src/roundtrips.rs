//! Section 6, round trips and statements per outcome, counted by a proxy that reads
//! the PostgreSQL wire protocol between the gate and the server: each simple
//! `Query` message and each `Sync` ends one round trip; each `Execute` runs one
//! prepared statement; a simple query runs each of its `;`-separated statements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use startgate::{
    Actor, Clock, Completion, CompletionOutcome, Gate, GateOptions, ProviderConnection,
    StartRequest, Timestamp,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::setup::{self, err, BenchResult};
use crate::Section;

#[derive(Default)]
pub struct Counts {
    round_trips: AtomicU64,
    statements: AtomicU64,
    control: AtomicU64,
}

impl Counts {
    fn take(&self) -> (u64, u64, u64) {
        (
            self.round_trips.swap(0, Ordering::SeqCst),
            self.statements.swap(0, Ordering::SeqCst),
            self.control.swap(0, Ordering::SeqCst),
        )
    }
}

/// Starts a counting proxy to `upstream`; returns its port.
pub async fn proxy(upstream: &'static str, counts: Arc<Counts>) -> BenchResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err("bind"))?;
    let port = listener.local_addr().map_err(err("addr"))?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    let _ = relay(client, server, counts).await;
                }
            });
        }
    });
    Ok(port)
}

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<Counts>) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let to_client =
        tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
    // Client → server, message by message. Until the startup message, frames
    // have no type byte (an SSL or GSS request may come first).
    let mut started = false;
    loop {
        let typed = started;
        let mut kind = [0u8; 1];
        if typed && client_read.read_exact(&mut kind).await.is_err() {
            break;
        }
        let mut len = [0u8; 4];
        client_read.read_exact(&mut len).await?;
        let length = u32::from_be_bytes(len) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        client_read.read_exact(&mut body).await?;
        if !started {
            let code = body
                .get(..4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
            // 80877103 = SSLRequest, 80877104 = GSSENCRequest: still untyped after them.
            started = !matches!(code, Some(80_877_103 | 80_877_104));
        } else {
            match kind[0] {
                b'Q' => {
                    counts.round_trips.fetch_add(1, Ordering::SeqCst);
                    let sql = String::from_utf8_lossy(&body);
                    for part in sql
                        .trim_end_matches('\0')
                        .split(';')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                    {
                        counts.statements.fetch_add(1, Ordering::SeqCst);
                        let upper = part.to_ascii_uppercase();
                        if ["BEGIN", "COMMIT", "ROLLBACK", "SET"]
                            .iter()
                            .any(|c| upper.starts_with(c))
                        {
                            counts.control.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                b'S' => {
                    counts.round_trips.fetch_add(1, Ordering::SeqCst);
                }
                b'E' => {
                    counts.statements.fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
        }
        if typed {
            server_write.write_all(&kind).await?;
        }
        server_write.write_all(&len).await?;
        server_write.write_all(&body).await?;
    }
    to_client.abort();
    Ok(())
}

fn actor() -> Actor {
    Actor::member("bench", ["inventory.sync", "compliance.read"])
}

fn on(scope: &str, operation: &str) -> StartRequest {
    StartRequest::new(operation, "bench", actor()).with_connection(scope)
}

/// Every outcome once to prepare statements, then once more to count.
async fn count_outcomes(
    gate: &Gate,
    counts: &Counts,
    scope_a: &str,
    scope_b: &str,
) -> BenchResult<Vec<(String, (u64, u64, u64))>> {
    let blocked = StartRequest::new("inventory.sync", "blocked", actor());
    let denied = StartRequest::new("inventory.sync", "bench", Actor::non_member("mallory"));
    let mut rows = Vec::new();
    for (pass, scope) in [(0, scope_a), (1, scope_b)] {
        let mut measure = |name: &str, value: (u64, u64, u64)| {
            if pass == 1 {
                rows.push((name.to_string(), value));
            }
        };
        counts.take();
        let first = gate
            .start(&on(scope, "inventory.sync"))
            .await
            .map_err(err("start"))?;
        measure("accepted", counts.take());
        gate.start(&on(scope, "inventory.sync"))
            .await
            .map_err(err("start"))?;
        measure("deduped", counts.take());
        gate.start(&on(scope, "compliance.snapshot"))
            .await
            .map_err(err("start"))?;
        measure("scope_busy", counts.take());
        gate.start(&blocked).await.map_err(err("start"))?;
        measure("blocked", counts.take());
        gate.start(&denied).await.map_err(err("start"))?;
        measure("denied", counts.take());
        let run = first.run.ok_or("no run")?;
        let token = run.fencing_token.ok_or("no token")?;
        gate.mark_running(run.id, token)
            .await
            .map_err(err("mark_running"))?;
        measure("mark_running", counts.take());
        gate.complete(&Completion::new(
            run.id,
            token,
            CompletionOutcome::Succeeded,
        ))
        .await
        .map_err(err("complete"))?;
        measure("complete (no pending run)", counts.take());
        let stale = gate
            .start(&on(scope, "inventory.sync"))
            .await
            .map_err(err("start"))?;
        if stale.run.is_none() {
            return Err("no run to go stale".into());
        }
        gate.advance_clock(Duration::from_secs(3600))
            .map_err(err("clock"))?;
        counts.take();
        let takeover = gate
            .start(&on(scope, "compliance.snapshot"))
            .await
            .map_err(err("start"))?;
        if takeover.replaced_run_id.is_none() {
            return Err("expected a stale takeover".into());
        }
        measure("accepted after a stale takeover", counts.take());
    }
    Ok(rows)
}

/// A one-connection gate whose traffic to `upstream` passes through a
/// counting proxy; `extra` is appended to the URL's query.
async fn counted_gate(
    upstream: &'static str,
    database: &str,
    extra: &str,
) -> BenchResult<(Gate, Arc<Counts>)> {
    let counts = Arc::new(Counts::default());
    let port = proxy(upstream, counts.clone()).await?;
    let proxied = format!("postgres://postgres@127.0.0.1:{port}/{database}?sslmode=disable{extra}");
    let options = GateOptions {
        max_connections: 1,
        clock: Clock::manual(Timestamp::from_micros(1_800_000_000_000_000)),
        ..GateOptions::default()
    };
    let gate = Gate::open_with(&proxied, setup::registry()?, options)
        .await
        .map_err(err("open"))?;
    Ok((gate, counts))
}

/// The same outcomes on a database whose connection facts are a host table's,
/// read through a view (tests/conformance/host_view.sql): the accepted path
/// must stay one round trip.
async fn host_view_outcomes(admin_url: &str) -> BenchResult<Vec<(String, (u64, u64, u64))>> {
    const DB: &str = "startgate_bench_roundtrips_view";
    let url = setup::fresh_pg_database(admin_url, DB, false).await?;
    setup::prepared_gate(&url, 1, 1).await?.close().await;
    let view = std::fs::read_to_string("tests/conformance/host_view.sql").map_err(err(
        "tests/conformance/host_view.sql (run from the repository)",
    ))?;
    let rows = "SELECT public.host_save_connection(jsonb_build_object('tenant_id', 'bench', 'id', 'c-' || g, \
                'provider', 'microsoft_graph', 'is_default', g = 0, 'consent', 'granted', 'credential', 'present', \
                'health', 'ok')) FROM generate_series(0, 3) g; \
                SELECT public.host_save_connection('{\"tenant_id\": \"blocked\", \"id\": \"graph\", \
                \"provider\": \"microsoft_graph\", \"is_default\": true, \"consent\": \"missing\"}'::jsonb)";
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .map_err(err("connect"))?;
    sqlx::raw_sql(&view)
        .execute(&mut conn)
        .await
        .map_err(err("host view"))?;
    sqlx::raw_sql(rows)
        .execute(&mut conn)
        .await
        .map_err(err("host rows"))?;
    conn.close().await.ok();
    let (gate, counts) = counted_gate("127.0.0.1:5432", DB, "").await?;
    let rows = count_outcomes(&gate, &counts, "c-0", "c-1").await?;
    gate.close().await;
    setup::drop_pg_database(admin_url, DB).await?;
    Ok(rows)
}

pub async fn roundtrips(admin_url: &str, pgbouncer: bool) -> BenchResult<Section> {
    let url = setup::fresh_pg_database(admin_url, "startgate_bench_roundtrips", false).await?;
    let gate = setup::prepared_gate(&url, 10, 1).await?;
    gate.upsert_connection(&ProviderConnection {
        consent: startgate::Consent::Missing,
        ..ProviderConnection::ready("blocked", "graph", "microsoft_graph")
    })
    .await
    .map_err(err("connection"))?;
    gate.close().await;
    let database = url.rsplit('/').next().unwrap_or_default().to_string();
    let mut tables = Vec::new();
    let mut targets_via: Vec<(&str, &'static str, &str)> =
        vec![("PostgreSQL, direct", "127.0.0.1:5432", "")];
    if pgbouncer {
        targets_via.push((
            "through pgbouncer (pool_mode=transaction)",
            "127.0.0.1:6433",
            "&pool_mode=transaction",
        ));
    }
    let mut columns = Vec::new();
    for (label, upstream, extra) in targets_via {
        let (gate, counts) = counted_gate(upstream, &database, extra).await?;
        let scopes = if columns.is_empty() {
            ("c-0", "c-1")
        } else {
            ("c-2", "c-3")
        };
        columns.push((
            label,
            count_outcomes(&gate, &counts, scopes.0, scopes.1).await?,
        ));
        gate.close().await;
    }
    columns.push((
        "PostgreSQL, direct, facts from a host view",
        host_view_outcomes(admin_url).await?,
    ));
    let names: Vec<String> = columns[0].1.iter().map(|(n, _)| n.clone()).collect();
    let header = columns
        .iter()
        .map(|(l, _)| format!(" {l}: round trips | statements (transaction control) |"))
        .collect::<String>();
    tables.push(format!("| call |{header}"));
    tables.push(format!("|---|{}", "---|---|".repeat(columns.len())));
    for (i, name) in names.iter().enumerate() {
        let cells: String = columns
            .iter()
            .map(|(_, rows)| {
                let (rt, st, ctl) = rows[i].1;
                format!(" {rt} | {st} ({ctl}) |")
            })
            .collect();
        tables.push(format!("| {name} |{cells}"));
    }
    setup::drop_pg_database(admin_url, "startgate_bench_roundtrips").await?;
    let markdown = format!(
        "{}\n\nCounted, not estimated: a proxy between the gate and the server reads the PostgreSQL wire \
         protocol (a `Query` message or a `Sync` ends a round trip; each `Execute` runs one statement; a \
         simple query runs each of its statements). Steady state: every call was made once before to \
         prepare its statements. Behind a transaction pooler every statement runs in its own short \
         transaction with an unnamed prepared statement, so each costs a parse and an execute round trip \
         plus BEGIN/COMMIT. On SQLite the accepted path is one `BEGIN IMMEDIATE` transaction with four \
         statements (read the connection, read the scope's latest run, insert the run, insert the \
         audit row), in process; SQLite builds no temporary b-tree for any of them.",
        tables.join("\n")
    );
    Ok(Section::new(
        "6. Round trips and statements per outcome",
        markdown,
        Vec::new(),
    ))
}
