//! The gate: the one start path. Validation and authorization happen here;
//! resolution, preflight and admission happen in one store transaction.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::error::{Error, Result};
use crate::metrics::{self, CallCounts, DatabaseStats, Metrics, MetricsSnapshot};
use crate::model::{
    Completion, CompletionResult, Initiator, Outcome, Presentation, ProviderConnection, ReapResult,
    Run, RunFilter, SequenceRequest, StartAttempt, StartRequest, StartResult, MAX_CHECK_REQUESTS,
};
use crate::options::GateOptions;
use crate::presenter;
use crate::registry::{OperationType, Registry};
use crate::store::{Admission, Ended, Plan, Source, Store};
use crate::time::Clock;

#[derive(Debug)]
struct Inner {
    store: Store,
    registry: Arc<Registry>,
    clock: Clock,
    metrics: Metrics,
}

/// An open start gate. Cheap to clone; clones share one pool. `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Gate {
    inner: Arc<Inner>,
}

impl Gate {
    /// Opens a gate on `url` with default options. A path or `sqlite:` URL opens
    /// (and creates) an embedded SQLite database.
    pub async fn open(url: &str, registry: Registry) -> Result<Gate> {
        Gate::open_with(url, registry, GateOptions::default()).await
    }

    /// Opens a gate with explicit options.
    pub async fn open_with(url: &str, registry: Registry, options: GateOptions) -> Result<Gate> {
        let store = Store::open(url, &registry, &options).await?;
        Ok(Gate {
            inner: Arc::new(Inner {
                store,
                registry: Arc::new(registry),
                clock: options.clock,
                metrics: Metrics::default(),
            }),
        })
    }

    /// Applies the schema migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        self.inner.store.migrate().await
    }

    /// Closes the pool. Later calls fail with `store_unavailable`.
    pub async fn close(&self) {
        self.inner.store.close().await
    }

    /// The registry this gate was opened with.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The gate's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Moves a manual clock forward (tests, demos). `invalid_request` on the system clock.
    pub fn advance_clock(&self, by: Duration) -> Result<()> {
        if self.inner.clock.advance(by) {
            Ok(())
        } else {
            Err(Error::invalid(
                "clock",
                "the gate uses the system clock; open it with a manual clock to move time",
            ))
        }
    }

    /// [`Gate::start`], before it is timed, counted and traced.
    async fn start_unobserved(&self, request: &StartRequest) -> Result<StartResult> {
        request.validate()?;
        let op = self.operation(&request.operation)?;
        let plan = plan_of(request, op, Source::Start);
        if let Some(status) = authorize(&request.actor, std::slice::from_ref(&op)) {
            self.inner
                .store
                .record_denied(&plan, status, &self.inner.clock)
                .await?;
            return Ok(denied(&request.operation, &request.tenant_id, status));
        }
        let admission = self.inner.store.admit(&plan, &self.inner.clock).await?;
        Ok(self.result(
            &request.operation,
            &request.tenant_id,
            admission,
            Vec::new(),
        ))
    }

    /// [`Gate::check`], before it is timed, counted and traced.
    async fn check_unobserved(
        &self,
        requests: &[StartRequest],
    ) -> Result<Vec<Result<StartResult>>> {
        if requests.len() > MAX_CHECK_REQUESTS {
            return Err(Error::invalid(
                "requests",
                format!("at most {MAX_CHECK_REQUESTS} requests per check"),
            ));
        }
        let mut answers: Vec<Option<Result<StartResult>>> = Vec::with_capacity(requests.len());
        let mut plans = Vec::new();
        let mut slots = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let op = match request
                .validate()
                .and_then(|()| self.operation(&request.operation))
            {
                Ok(op) => op,
                Err(err) => {
                    answers.push(Some(Err(err)));
                    continue;
                }
            };
            if let Some(status) = authorize(&request.actor, std::slice::from_ref(&op)) {
                answers.push(Some(Ok(denied(
                    &request.operation,
                    &request.tenant_id,
                    status,
                ))));
                continue;
            }
            plans.push(plan_of(request, op, Source::Start));
            slots.push(i);
            answers.push(None);
        }
        let decided = self.inner.store.check(&plans, &self.inner.clock).await?;
        for (slot, admission) in slots.into_iter().zip(decided) {
            let request = &requests[slot];
            answers[slot] = Some(Ok(self.result(
                &request.operation,
                &request.tenant_id,
                admission,
                Vec::new(),
            )));
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| Error::internal("a check request was left unanswered")))
            .collect()
    }

    /// [`Gate::start_sequence`], before it is timed, counted and traced.
    async fn start_sequence_unobserved(&self, request: &SequenceRequest) -> Result<StartResult> {
        request.validate()?;
        let names: Vec<String> = match (&request.operations, &request.sequence) {
            (Some(ops), _) => ops.clone(),
            (None, Some(name)) => self
                .inner
                .registry
                .sequence(name)
                .map(|s| s.operations.clone())
                .ok_or_else(|| {
                    Error::invalid(
                        "sequence",
                        format!("no sequence \"{name}\" in the registry"),
                    )
                })?,
            (None, None) => {
                return Err(Error::internal("sequence request validated without steps"))
            }
        };
        let ops = names
            .iter()
            .map(|name| self.operation(name))
            .collect::<Result<Vec<_>>>()?;
        let as_start = |op: &OperationType| StartRequest {
            operation: op.name.clone(),
            tenant_id: request.tenant_id.clone(),
            actor: request.actor.clone(),
            provider_connection_id: request.provider_connection_id.clone(),
            subject: request.subject.clone(),
            params: request.params.clone(),
            initiator: request.initiator,
            tenant_active: request.tenant_active,
        };
        let starts: Vec<StartRequest> = ops.iter().map(|op| as_start(op)).collect();
        let plans: Vec<Plan<'_>> = starts
            .iter()
            .zip(&ops)
            .map(|(start, op)| plan_of(start, op, Source::Sequence))
            .collect();
        let (first, rest) = plans
            .split_first()
            .ok_or_else(|| Error::invalid("operations", "needs at least one operation"))?;
        if let Some(status) = authorize(&request.actor, &ops) {
            self.inner
                .store
                .record_denied(first, status, &self.inner.clock)
                .await?;
            return Ok(denied(&first.op.name, &request.tenant_id, status));
        }
        let (admission, pending) = self
            .inner
            .store
            .start_sequence(first, rest, &self.inner.clock)
            .await?;
        Ok(self.result(&first.op.name, &request.tenant_id, admission, pending))
    }

    /// [`Gate::mark_running`], before it is timed, counted and traced.
    async fn mark_running_unobserved(&self, run_id: i64, fencing_token: i64) -> Result<Run> {
        self.inner
            .store
            .mark_running(run_id, fencing_token, &self.inner.clock)
            .await
    }

    /// [`Gate::heartbeat`], before it is timed, counted and traced.
    async fn heartbeat_unobserved(&self, run_id: i64, fencing_token: i64) -> Result<Run> {
        self.inner
            .store
            .heartbeat(run_id, fencing_token, &self.inner.clock)
            .await
    }

    /// [`Gate::complete`], before it is timed, counted and traced.
    async fn complete_unobserved(&self, completion: &Completion) -> Result<CompletionResult> {
        completion.validate()?;
        let summary = completion
            .summary
            .as_ref()
            .map(|s| serde_json::Value::Object(s.clone()).to_string());
        let ended = self
            .inner
            .store
            .complete(&self.inner.registry, completion, summary, &self.inner.clock)
            .await?;
        Ok(self.ended(ended))
    }

    /// [`Gate::cancel`], before it is timed, counted and traced.
    async fn cancel_unobserved(
        &self,
        run_id: i64,
        reason_code: Option<&str>,
    ) -> Result<CompletionResult> {
        if let Some(code) = reason_code {
            crate::model::validate_name("reason_code", code)?;
        }
        let ended = self
            .inner
            .store
            .cancel(&self.inner.registry, run_id, reason_code, &self.inner.clock)
            .await?;
        Ok(self.ended(ended))
    }

    /// [`Gate::reap_stale`], before it is timed, counted and traced.
    async fn reap_stale_unobserved(&self) -> Result<ReapResult> {
        let (reaped, next) = self
            .inner
            .store
            .reap(&self.inner.registry, &self.inner.clock)
            .await?;
        let next = next
            .into_iter()
            .map(|a| {
                let (operation, tenant) = run_identity(&a);
                self.result(&operation, &tenant, a, Vec::new())
            })
            .collect();
        Ok(ReapResult { reaped, next })
    }

    /// One run by id (without its fencing token).
    pub async fn get_run(&self, run_id: i64) -> Result<Run> {
        let call = self.inner.store.get_run(run_id);
        self.observe("get_run", Some(run_id), call).await
    }

    /// Runs matching `filter`, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let call = async {
            if let Some(tenant) = &filter.tenant_id {
                crate::model::validate_id("tenant_id", tenant)?;
            }
            if let Some(operation) = &filter.operation {
                crate::model::validate_id("operation", operation)?;
            }
            self.inner.store.list_runs(filter).await
        };
        self.observe("list_runs", None, call).await
    }

    /// The start attempts that created, were refused by, or replaced this run.
    pub async fn attempts_for_run(&self, run_id: i64) -> Result<Vec<StartAttempt>> {
        let call = self.inner.store.attempts_for_run(run_id);
        self.observe("attempts_for_run", Some(run_id), call).await
    }

    /// The latest start attempts, newest first, optionally for one tenant.
    pub async fn list_attempts(
        &self,
        tenant_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StartAttempt>> {
        let call = async {
            if let Some(tenant) = tenant_id {
                crate::model::validate_id("tenant_id", tenant)?;
            }
            self.inner
                .store
                .list_attempts(tenant_id, limit.min(10_000))
                .await
        };
        self.observe("list_attempts", None, call).await
    }

    /// Records (or replaces) a connection's readiness facts. Making one the
    /// default clears the tenant's previous default in the same transaction.
    pub async fn upsert_connection(
        &self,
        connection: &ProviderConnection,
    ) -> Result<ProviderConnection> {
        let call = async {
            connection.validate()?;
            self.inner
                .store
                .upsert_connection(connection, &self.inner.clock)
                .await
        };
        self.observe("upsert_connection", None, call).await
    }

    /// One connection of a tenant.
    pub async fn get_connection(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<ProviderConnection>> {
        let call = async {
            crate::model::validate_id("tenant_id", tenant_id)?;
            crate::model::validate_id("id", id)?;
            self.inner.store.get_connection(tenant_id, id).await
        };
        self.observe("get_connection", None, call).await
    }

    /// The tenant's default connection.
    pub async fn default_connection(&self, tenant_id: &str) -> Result<Option<ProviderConnection>> {
        let call = async {
            crate::model::validate_id("tenant_id", tenant_id)?;
            self.inner.store.default_connection(tenant_id).await
        };
        self.observe("default_connection", None, call).await
    }

    /// Every connection of a tenant, by id.
    pub async fn list_connections(&self, tenant_id: &str) -> Result<Vec<ProviderConnection>> {
        let call = async {
            crate::model::validate_id("tenant_id", tenant_id)?;
            self.inner.store.list_connections(tenant_id).await
        };
        self.observe("list_connections", None, call).await
    }

    /// Operator feedback for a start result (no database access).
    pub fn present(&self, result: &StartResult) -> Presentation {
        presenter::present(&self.inner.registry, result)
    }

    /// Run-detail and monitoring wording (no database access).
    pub fn present_run(&self, run: &Run) -> Presentation {
        presenter::present_run(&self.inner.registry, run)
    }

    fn operation(&self, name: &str) -> Result<&OperationType> {
        self.inner
            .registry
            .operation(name)
            .ok_or_else(|| Error::UnknownOperation {
                operation: name.to_string(),
            })
    }

    fn result(
        &self,
        operation: &str,
        tenant_id: &str,
        a: Admission,
        pending: Vec<Run>,
    ) -> StartResult {
        let reasons = presenter::render_reasons(
            &self.inner.registry,
            &a.reasons,
            operation,
            tenant_id,
            a.connection_id.as_deref(),
            a.run.as_ref().map(|r| r.id),
        );
        StartResult {
            outcome: a.outcome,
            operation: operation.to_string(),
            tenant_id: tenant_id.to_string(),
            run: a.run,
            holder: a.holder,
            reasons,
            status: None,
            provider_connection_id: a.connection_id,
            replaced_run_id: a.replaced_run_id,
            params_differ: a.params_differ,
            pending,
        }
    }

    fn ended(&self, ended: Ended) -> CompletionResult {
        let render = |a: Admission| {
            let (operation, tenant) = run_identity(&a);
            self.result(&operation, &tenant, a, Vec::new())
        };
        CompletionResult {
            notify_initiator: ended.run.initiator == Initiator::User,
            run: ended.run,
            next: ended.next.map(render),
            next_blocked: ended.next_blocked.into_iter().map(render).collect(),
        }
    }
}

fn run_identity(a: &Admission) -> (String, String) {
    a.run
        .as_ref()
        .map(|r| (r.operation.clone(), r.tenant_id.clone()))
        .unwrap_or_default()
}

fn plan_of<'a>(request: &'a StartRequest, op: &'a OperationType, source: Source) -> Plan<'a> {
    Plan {
        op,
        tenant_id: &request.tenant_id,
        requested_connection: request.provider_connection_id.as_deref(),
        subject: request.subject.as_deref(),
        params: request.params.as_ref(),
        initiator: request.initiator,
        actor_id: &request.actor.id,
        tenant_active: request.tenant_active,
        source,
    }
}

/// `Some(404)` for a non-member, `Some(403)` for a member lacking a capability.
fn authorize(actor: &crate::model::Actor, ops: &[&OperationType]) -> Option<u16> {
    if !actor.is_member {
        return Some(404);
    }
    let lacks = ops
        .iter()
        .any(|op| !actor.capabilities.contains(&op.capability));
    lacks.then_some(403)
}

/// A denied result carries nothing but the status: a non-member must not learn
/// that the tenant, a run or a connection exists.
fn denied(operation: &str, tenant_id: &str, status: u16) -> StartResult {
    StartResult {
        outcome: Outcome::Denied,
        operation: operation.to_string(),
        tenant_id: tenant_id.to_string(),
        run: None,
        holder: None,
        reasons: Vec::new(),
        status: Some(status),
        provider_connection_id: None,
        replaced_run_id: None,
        params_differ: None,
        pending: Vec::new(),
    }
}

/// The public calls: each one timed, counted and traced (crate::metrics).
impl Gate {
    /// Validates, authorizes, resolves, preflights and admits one start, and
    /// records the attempt. One of accepted / deduped / scope_busy / blocked / denied.
    pub async fn start(&self, request: &StartRequest) -> Result<StartResult> {
        self.observe_start("start", self.start_unobserved(request))
            .await
    }

    /// The decision `start` would make for each request, writing nothing. An
    /// invalid request gets its error in place; the others are still answered.
    pub async fn check(&self, requests: &[StartRequest]) -> Result<Vec<Result<StartResult>>> {
        self.observe("check", None, self.check_unobserved(requests))
            .await
    }

    /// Starts an ordered list of operations on one scope: the first is admitted
    /// as usual; if it is accepted the rest are recorded as `pending` (listed in
    /// the result's `pending`) and each is admitted when the run before it ends.
    pub async fn start_sequence(&self, request: &SequenceRequest) -> Result<StartResult> {
        self.observe_start("start_sequence", self.start_sequence_unobserved(request))
            .await
    }

    /// The worker took the run: `queued` → `running`, lease started. Repeating
    /// it with the same token renews the lease. Refused (`invalid_transition`)
    /// when the run is no longer active or the token is not the run's: the
    /// worker must then stop.
    pub async fn mark_running(&self, run_id: i64, fencing_token: i64) -> Result<Run> {
        let call = self.mark_running_unobserved(run_id, fencing_token);
        self.observe("mark_running", Some(run_id), call).await
    }

    /// Extends a running run's lease by the operation's `lease`.
    pub async fn heartbeat(&self, run_id: i64, fencing_token: i64) -> Result<Run> {
        let call = self.heartbeat_unobserved(run_id, fencing_token);
        self.observe("heartbeat", Some(run_id), call).await
    }

    /// Ends a run and frees its scope; returns whether to notify the initiator
    /// and the pending run this admitted (dispatch it). A queued run may only
    /// fail or be cancelled; succeeding needs `mark_running` first.
    pub async fn complete(&self, completion: &Completion) -> Result<CompletionResult> {
        let call = self.complete_unobserved(completion);
        self.observe("complete", Some(completion.run_id), call)
            .await
    }

    /// Cancels a pending or active run (an operator's decision; no token
    /// needed). Its worker is refused from then on.
    pub async fn cancel(&self, run_id: i64, reason_code: Option<&str>) -> Result<CompletionResult> {
        let call = self.cancel_unobserved(run_id, reason_code);
        self.observe("cancel", Some(run_id), call).await
    }

    /// Ends every stale run as `failed` with `run_lease_expired` and admits the
    /// pending runs of the scopes this frees (for a cron).
    pub async fn reap_stale(&self) -> Result<ReapResult> {
        let result = self
            .observe("reap_stale", None, self.reap_stale_unobserved())
            .await;
        if let Ok(reaped) = &result {
            self.inner.metrics.reaped(reaped.reaped.len());
        }
        result
    }

    /// What the database records of every gate that shares it: starts by
    /// operation and outcome, blocked starts by primary reason and takeovers
    /// (from the audit table), reaped runs, and runs by status now. Reads
    /// every audit row: for an operator's look, not for a hot path.
    pub async fn stats(&self) -> Result<DatabaseStats> {
        self.observe("stats", None, self.inner.store.stats()).await
    }

    /// What this gate has done in this process since it was opened: starts by
    /// operation and outcome, blocked starts by primary reason, takeovers,
    /// reaped runs, failed calls by error code, and latency (p50/p99) per call
    /// kind. Touches no database.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Runs a call in its span, timing it and counting its round trips, and
    /// records it (crate::metrics). A plain function, so that `call` is boxed
    /// (by [`timed`]) when the call is made: an `async fn` would keep `call`
    /// in its own state beside the box, and every caller's future would
    /// carry (and move) the whole call again.
    fn observe<'a, T: 'a>(
        &'a self,
        kind: &'static str,
        run_id: Option<i64>,
        call: impl Future<Output = Result<T>> + 'a,
    ) -> impl Future<Output = Result<T>> + 'a {
        let span = tracing::debug_span!(target: "startgate", "call", call = kind, run_id);
        let timed = timed(span, call);
        async move {
            let (result, elapsed, counts) = timed.await;
            self.inner
                .metrics
                .call(kind, elapsed, counts, run_id, &result);
            result
        }
    }

    /// [`Gate::observe`] for the starts, whose result is counted too.
    fn observe_start<'a>(
        &'a self,
        kind: &'static str,
        call: impl Future<Output = Result<StartResult>> + 'a,
    ) -> impl Future<Output = Result<StartResult>> + 'a {
        let span = tracing::debug_span!(target: "startgate", "call", call = kind);
        let timed = timed(span, call);
        async move {
            let (result, elapsed, counts) = timed.await;
            self.inner.metrics.start(kind, elapsed, counts, &result);
            result
        }
    }
}

/// Runs `call` inside `span`: its output, how long it took, and its round
/// trips and retries. A plain function that boxes `call` at once: a call's
/// state machine is large, and nesting it in these wrappers by value would
/// multiply what a host's thread stack holds and what each level copies.
fn timed<F: Future>(
    span: tracing::Span,
    call: F,
) -> impl Future<Output = (F::Output, Duration, CallCounts)> {
    let call = Box::pin(call).instrument(span);
    async move {
        let began = Instant::now();
        let (output, counts) = metrics::counted(call).await;
        (output, began.elapsed(), counts)
    }
}
