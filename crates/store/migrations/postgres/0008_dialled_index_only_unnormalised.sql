-- The number search finds 14-numbers through `normalised` (the search term is normalised the
-- way the core normalises dialled digits, so `14 020`, `+3114020` and `14020` all match), so
-- `dialled` needs an index only where there is no normalised number: calls rejected for a
-- number that is not a 14-number at all. That is a few calls instead of every call — one
-- spread-out index page fewer per record written (docs/PERFORMANCE-store.md, writer_cpu).
DROP INDEX IF EXISTS calls_dialled;
CREATE INDEX calls_dialled_unnormalised ON calls (dialled, received_ms) WHERE normalised IS NULL;
