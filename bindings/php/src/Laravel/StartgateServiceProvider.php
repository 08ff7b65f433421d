<?php

declare(strict_types=1);

namespace Startgate\Laravel;

use Illuminate\Console\Scheduling\Schedule;
use Illuminate\Contracts\Config\Repository;
use Illuminate\Support\ServiceProvider;
use Startgate\Gate;

/**
 * Binds one shared Gate per process (config/startgate.php) whose log records
 * go to the app's log channel, registers the
 * artisan commands, the config to publish and `startgate:reap` on the
 * scheduler. Discovered by Laravel from composer.json; nothing to register
 * by hand.
 */
final class StartgateServiceProvider extends ServiceProvider
{
    private const CONFIG = __DIR__ . '/../../config/startgate.php';

    public function register(): void
    {
        $this->mergeConfigFrom(self::CONFIG, 'startgate');
        // One handle per application instance; the library shares one pool
        // per process between handles with the same settings, so each PHP-FPM
        // worker keeps its connections from request to request.
        $this->app->singleton(Gate::class, static function ($app): Gate {
            $config = $app->make(Repository::class);
            $gate = GateConfig::open(
                (array) $config->get('startgate', []),
                (array) $config->get('database.connections', []),
                $config->get('database.default'),
            );
            // The gate's records go to the app's own log (a PSR-3 logger).
            $channel = $config->get('startgate.log_channel');
            if ($channel !== false) {
                $log = $app->make('log');
                Gate::setLogger($channel === null ? $log : $log->channel($channel), $config->get('startgate.log_level', 'info'));
            }
            return $gate;
        });
        $this->app->alias(Gate::class, 'startgate');
        $this->app->singleton(RunDispatcher::class);
    }

    public function boot(): void
    {
        $this->publishes([self::CONFIG => $this->app->configPath('startgate.php')], 'startgate-config');
        if ($this->app->runningInConsole()) {
            $this->commands([
                Console\MigrateCommand::class,
                Console\ReapCommand::class,
                Console\RunsCommand::class,
                Console\ExplainCommand::class,
            ]);
        }
        if ($this->app->make(Repository::class)->get('startgate.schedule_reap', true)) {
            $this->callAfterResolving(Schedule::class, static function (Schedule $schedule): void {
                $schedule->command('startgate:reap')->everyMinute();
            });
        }
    }
}
