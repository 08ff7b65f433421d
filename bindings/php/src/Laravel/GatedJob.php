<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Startgate\Exception;

/**
 * Makes a queued job a gated job: it is dispatched for one run the gate
 * admitted (`SyncInventory::dispatch($result)` with the accepted start
 * result) and runs only through RunThroughGate, which marks the run running
 * before handle() and completes it after. Inside handle(), gateRun() is the
 * run: its pinned provider connection, its params, heartbeat().
 *
 * A job dispatched without an admitted run is refused by the middleware, and
 * gateRun() throws UngatedJob wherever handle() is reached around it (a
 * direct Bus::dispatchNow), so provider work cannot start without the gate.
 * A job class that defines middleware() of its own includes
 * `new RunThroughGate()` in it.
 */
trait GatedJob
{
    /**
     * The run the gate admitted for this job (the run document of the
     * accepted start result), or null when none was given.
     *
     * @var array<string, mixed>|null
     */
    public ?array $startgateRun = null;

    /**
     * @param array<string, mixed>|null $admitted an accepted start result (or
     *        a sequence's `next`), or the run document itself
     */
    public function __construct(?array $admitted = null)
    {
        $this->startgateRun = $admitted === null ? null : self::admittedRun($admitted);
    }

    /** @return list<object> */
    public function middleware(): array
    {
        return [new RunThroughGate()];
    }

    /** The run this job works for, once the middleware has marked it running. */
    protected function gateRun(): GatedRun
    {
        return RunThroughGate::current($this);
    }

    /** @return array<string, mixed> */
    private static function admittedRun(array $admitted): array
    {
        if (array_key_exists('outcome', $admitted)) {
            if ($admitted['outcome'] !== 'accepted') {
                throw Exception::invalid('result', sprintf(
                    'only an accepted start result has a run to dispatch; this one is %s',
                    json_encode($admitted['outcome']),
                ));
            }
            $admitted = is_array($admitted['run'] ?? null) ? $admitted['run'] : [];
        }
        foreach (['id' => 'run_id', 'fencing_token' => 'fencing_token'] as $key => $field) {
            if (!is_int($admitted[$key] ?? null)) {
                throw Exception::invalid($field, 'a gated job needs the admitted run, with its id and fencing token');
            }
        }
        return $admitted;
    }
}
