-- Stale runs are found through the scope lock (operation_runs_one_active_per_scope),
-- which indexes exactly the active runs: `reap_stale` scans it and reads each
-- one's stale_at. Their own index had to be kept up to date by every accepted
-- start, mark_running, heartbeat and completion; on SQLite it was one of the nine
-- pages an accepted start's commit writes.
DROP INDEX operation_runs_stale;
