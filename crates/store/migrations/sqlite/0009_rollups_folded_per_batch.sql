-- New calls reach the rollups of 0003 and 0004 per batch, from the record writer
-- (crates/store/src/rollup_fold.rs: one grouped upsert per rollup table over the rows the
-- batch inserted) instead of eight trigger upserts per call. The UPDATE and DELETE triggers
-- stay: a call written again in a later batch, or removed, still moves its counts.
DROP TRIGGER calls_rollup_insert;
DROP TRIGGER report_rollup_insert;
