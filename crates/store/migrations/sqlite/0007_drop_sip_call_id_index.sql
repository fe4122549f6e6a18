-- No query looks calls up by the carrier's SIP Call-ID (the portal shows it on a call's
-- page, found by our own call id). Carrier Call-IDs are random, so this index cost a
-- randomly placed page write per recorded call (docs/PERFORMANCE-store.md, writer_cpu).
DROP INDEX IF EXISTS calls_sip_call_id;
