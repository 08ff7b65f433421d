<?php

declare(strict_types=1);

namespace Startgate\Laravel\Console;

use Startgate\Gate;

/** `startgate:explain {run}`: one run, what the operator sees, and its start attempts. */
final class ExplainCommand extends GateCommand
{
    protected $signature = 'startgate:explain {run : the run id} {--json : print it as JSON}';

    protected $description = 'Explain a run: its state, what the operator sees, its reasons and its start attempts';

    protected function perform(Gate $gate): int
    {
        $runId = $this->wholeNumber('run_id', $this->argument('run'));
        $run = $gate->getRun($runId);
        $shown = $gate->presentRun($run);
        $attempts = $gate->attemptsForRun($runId);
        if ($this->option('json')) {
            return $this->printJson(['run' => $run, 'presentation' => $shown, 'attempts' => $attempts]);
        }
        $this->line(sprintf('<options=bold>Run %d · %s</>', $run['id'], $run['operation']));
        $field = fn (string $name, string $value) => $this->line(sprintf('  %-12s %s', $name, $value));
        $field('tenant', $run['tenant_id']);
        $field('connection', $run['provider_connection_id'] ?? '— (none resolved)');
        if ($run['subject'] !== null) {
            $field('subject', $run['subject']);
        }
        $field('status', "{$run['status']} since {$run['since']}");
        $field('started by', "{$run['actor_id']} ({$run['initiator']})");
        if ($run['replaced_run_id'] !== null) {
            $field('replaced', "run {$run['replaced_run_id']} (stale)");
        }
        $this->newLine();
        $this->line('<options=bold>What the operator sees</>');
        $this->line(sprintf('  [%s] %s', $shown['tone'], $shown['title']));
        $this->line('  ' . $shown['body']);
        foreach ($shown['actions'] as $action) {
            $this->line("  → {$action['label']}: {$action['url']}");
        }
        if ($run['reasons'] !== []) {
            $this->newLine();
            $this->line('<options=bold>Reasons (primary first)</>');
            foreach ($run['reasons'] as $reason) {
                $this->line('  ' . $reason);
            }
        }
        $this->newLine();
        $this->line(sprintf('<options=bold>Start attempts (%d)</>', count($attempts)));
        if ($attempts === []) {
            $this->line('  none recorded');
            return self::SUCCESS;
        }
        $this->table(
            ['AT', 'SOURCE', 'ACTOR', 'OPERATION', 'OUTCOME'],
            array_map(static fn (array $a): array => [$a['attempted_at'], $a['source'], $a['actor_id'], $a['operation'], $a['outcome']], $attempts),
        );
        return self::SUCCESS;
    }
}
