<?php
// Every operation of Startgate\Gate, on SQLite and PostgreSQL.

declare(strict_types=1);

use Startgate\Gate;

function exerciseEveryOperation(string $url): void
{
    $gate = Gate::open($url, registryPath(), ['manual_clock' => '2026-01-01T09:00:00Z', 'share' => false]);
    $gate->migrate();
    $gate->migrate(); // idempotent
    same(Gate::version(), trim((string) shell_exec('grep -m1 "^version" ' . escapeshellarg(repo('Cargo.toml')) . " | cut -d'\"' -f2")), 'version matches Cargo.toml');

    $stored = $gate->upsertConnection(readyConnection());
    same(true, $stored['is_default'], 'upsert');
    same('graph', $gate->getConnection('contoso', 'graph')['id'], 'getConnection');
    same(null, $gate->getConnection('contoso', 'nope'), 'absent connection');
    same(['graph'], array_column($gate->listConnections('contoso'), 'id'), 'listConnections');

    $accepted = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice(), 'params' => []]);
    same('accepted', $accepted['outcome'], 'start');
    same('graph', $accepted['provider_connection_id'], 'pinned connection');
    $run = $accepted['run'];
    same(1, $run['fencing_token'], 'token');
    $shown = $gate->present($accepted);
    same(['queued', 'success', 'Inventory sync queued'], [$shown['status_label'], $shown['tone'], $shown['title']], 'present');

    $deduped = $gate->start(['operation' => 'inventory.sync', 'tenant_id' => 'contoso', 'actor' => alice(), 'params' => ['x' => 1]]);
    same(['deduped', true, null], [$deduped['outcome'], $deduped['params_differ'], $deduped['run']['fencing_token']], 'deduped');

    $answers = $gate->check([
        ['operation' => 'restore.execute', 'subject' => '17', 'tenant_id' => 'contoso', 'actor' => alice()],
        ['operation' => 'inventory.sync', 'tenant_id' => 'fabrikam', 'actor' => alice()],
        ['operation' => 'nope', 'tenant_id' => 'contoso', 'actor' => alice()],
    ]);
    same('scope_busy', $answers[0]['outcome'], 'check busy');
    same('provider_connection_missing', $answers[1]['reasons'][0]['code'], 'check blocked');
    same('unknown_operation', $answers[2]['error']['code'], 'check error in place');

    $metrics = $gate->metrics();
    same(['inventory.sync' => ['accepted' => 1, 'deduped' => 1]], $metrics['starts'], 'metrics: starts by operation and outcome');
    same([2, 1], [$metrics['latency']['start']['calls'], $metrics['latency']['check']['calls']], 'metrics: calls per kind');
    same([0, 0], [$metrics['takeovers'], $metrics['reaped_runs']], 'metrics: no takeover, no reap');

    throwsCode('invalid_transition', fn () => $gate->heartbeat($run['id'], $run['fencing_token']), 'mark_running first');
    same('running', $gate->markRunning($run['id'], $run['fencing_token'])['status'], 'markRunning');
    $gate->advanceClock(30);
    same('2026-01-01T09:05:30Z', $gate->heartbeat($run['id'], $run['fencing_token'])['stale_at'], 'heartbeat');
    same('running', $gate->getRun($run['id'])['status'], 'getRun');
    same('Inventory sync running', $gate->presentRun($gate->getRun($run['id']))['title'], 'presentRun');
    same(1, count($gate->listRuns(['active' => true])), 'listRuns');
    same(['accepted', 'deduped'], array_column($gate->attemptsForRun($run['id']), 'outcome'), 'attemptsForRun: the check wrote no audit row');

    $done = $gate->complete(['run_id' => $run['id'], 'fencing_token' => $run['fencing_token'], 'outcome' => 'succeeded', 'summary' => ['items' => 3]]);
    same([true, null, ['items' => 3]], [$done['notify_initiator'], $done['next'], $done['run']['summary']], 'complete');

    $sequence = $gate->startSequence(['sequence' => 'onboarding.bootstrap', 'tenant_id' => 'contoso', 'actor' => alice()]);
    same(['accepted', 2], [$sequence['outcome'], count($sequence['pending'])], 'startSequence');
    $cancelled = $gate->cancel($sequence['run']['id'], 'operator_stop');
    same(['cancelled', 'operator_stop'], [$cancelled['run']['status'], $cancelled['run']['reason_code']], 'cancel');
    same('provider.connection.check', $cancelled['next']['run']['operation'], 'cancel advanced the sequence');
    $gate->advanceClock(3600);
    $reaped = $gate->reapStale();
    same($cancelled['next']['run']['id'], $reaped['reaped'][0]['id'], 'reapStale');
    same('inventory.sync', $reaped['next'][0]['run']['operation'], 'reap admitted the last pending step');

    $gate->close();
    throwsCode('store_unavailable', fn () => $gate->getRun($run['id']), 'closed');
}

test('every operation works on SQLite', fn () => exerciseEveryOperation(sqliteUrl('ops')));
test('every operation works on PostgreSQL', fn () => exerciseEveryOperation(postgresUrl('ops')));
