<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Illuminate\Container\Container;
use Illuminate\Contracts\Events\Dispatcher as Events;
use Illuminate\Queue\Jobs\SyncJob;
use Psr\Log\LoggerInterface;
use Startgate\Exception;
use Startgate\Gate;

/**
 * The job middleware of gated jobs (GatedJob). Before handle(): marks the
 * job's run running, or stops the job when the gate refuses (the run was
 * reaped, taken over or cancelled: invalid_transition) and refuses a job
 * that carries no admitted run. After: completes the run `succeeded` on
 * return, `failed` with a reason code on an exception, dispatches the next
 * run of a sequence to its job class, and fires RunFinished.
 *
 * A stopped job is deleted from its queue, never retried: the run it was
 * dispatched for belongs to someone else now. A refused or failed job is
 * failed at once (failed_jobs), for the same reason: a retry could not mark
 * an ended run running again. Store errors (the database unreachable)
 * propagate, so the queue retries the job as it would any other.
 */
final class RunThroughGate
{
    /** @var \WeakMap<object, GatedRun>|null the runs jobs in this process hold running */
    private static ?\WeakMap $running = null;

    /** The run $job holds running; UngatedJob when the middleware did not mark one. */
    public static function current(object $job): GatedRun
    {
        return self::running()[$job] ?? throw UngatedJob::aroundTheGate($job);
    }

    /** Whether $e means the run is no longer the job's to work on. */
    public static function endsTheJob(Exception $e): bool
    {
        return in_array($e->getErrorCode(), [Exception::INVALID_TRANSITION, Exception::RUN_NOT_FOUND], true);
    }

    public function handle(object $job, callable $next): mixed
    {
        $container = Container::getInstance();
        $admitted = property_exists($job, 'startgateRun') ? $job->startgateRun : null;
        if (!is_array($admitted)) {
            return self::fail($job, UngatedJob::withoutRun($job));
        }
        $gate = $container->make(Gate::class);
        try {
            $gate->markRunning($admitted['id'], $admitted['fencing_token']);
        } catch (Exception $e) {
            if (self::endsTheJob($e)) {
                return self::stop($job, $admitted['id'], $e);
            }
            throw $e;
        }
        $run = new GatedRun($gate, $admitted);
        self::running()[$job] = $run;
        try {
            $value = $next($job);
        } catch (RunLost $lost) {
            return self::stop($job, $run->id, $lost);
        } catch (\Throwable $e) {
            self::end($gate, $run, 'failed', self::reasonCode($e));
            return self::fail($job, $e);
        } finally {
            unset(self::running()[$job]);
        }
        self::end($gate, $run, 'succeeded', null);
        return $value;
    }

    /** Completes the run; then dispatches what comes next and tells the app. */
    private static function end(Gate $gate, GatedRun $run, string $outcome, ?string $reasonCode): void
    {
        $completion = ['run_id' => $run->id, 'fencing_token' => $run->fencingToken, 'outcome' => $outcome];
        if ($reasonCode !== null) {
            $completion['reason_code'] = $reasonCode;
        }
        if ($run->summary() !== null) {
            $completion['summary'] = $run->summary();
        }
        try {
            $done = $gate->complete($completion);
        } catch (Exception $e) {
            if ($e->getErrorCode() === Exception::INVALID_REQUEST && $e->getField() === 'reason_code') {
                self::log()->warning("startgate: run {$run->id}: {$e->getMessage()}; failing it with job_failed instead");
                $done = $gate->complete(['reason_code' => 'job_failed'] + $completion);
            } elseif (self::endsTheJob($e)) {
                // Taken over while finishing: the later run owns the scope and its result.
                self::log()->warning("startgate: run {$run->id} ended elsewhere before this job completed it: {$e->getMessage()}");
                return;
            } else {
                throw $e;
            }
        }
        $container = Container::getInstance();
        if (is_array($done['next'] ?? null)) {
            $container->make(RunDispatcher::class)->dispatch($done['next']);
        }
        if ($container->bound(Events::class) || $container->bound('events')) {
            $container->make(Events::class)->dispatch(new RunFinished($done));
        }
    }

    /** The run is no longer this job's: delete the job, no retry, no work. */
    private static function stop(object $job, int $runId, \Throwable $why): mixed
    {
        self::log()->info("startgate: the job for run {$runId} stops without working: {$why->getMessage()}");
        $queued = self::queued($job);
        if ($queued !== null) {
            $queued->delete();
        }
        return null;
    }

    /** Fails the job without retries; in the caller when it was not queued. */
    private static function fail(object $job, \Throwable $e): mixed
    {
        if (self::queued($job) === null) {
            throw $e;
        }
        $job->fail($e);
        return null;
    }

    /** The queue job behind $job, when a queue worker runs it (not sync). */
    private static function queued(object $job): ?object
    {
        $queued = property_exists($job, 'job') ? $job->job : null;
        return is_object($queued) && !$queued instanceof SyncJob && method_exists($job, 'fail') ? $queued : null;
    }

    private static function reasonCode(\Throwable $e): string
    {
        return $e instanceof HasReasonCode ? $e->reasonCode() : 'job_failed';
    }

    private static function log(): LoggerInterface
    {
        return Container::getInstance()->make(LoggerInterface::class);
    }

    /** @return \WeakMap<object, GatedRun> */
    private static function running(): \WeakMap
    {
        return self::$running ??= new \WeakMap();
    }
}
