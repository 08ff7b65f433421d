-- Audit rows are written on every start and read rarely, by run. Index only
-- the rows a lookup can find (an accepted start has no holder, a denied one
-- no run), so the hot path maintains fewer index entries, and index the
-- replaced run too, which `explain` looks up.
DROP INDEX start_attempts_by_run;
DROP INDEX start_attempts_by_holder;
CREATE INDEX start_attempts_by_run ON start_attempts (run_id) WHERE run_id IS NOT NULL;
CREATE INDEX start_attempts_by_holder ON start_attempts (holder_run_id) WHERE holder_run_id IS NOT NULL;
CREATE INDEX start_attempts_by_replaced ON start_attempts (replaced_run_id) WHERE replaced_run_id IS NOT NULL;
