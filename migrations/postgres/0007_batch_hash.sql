-- What each stored batch held (issue 12). Keep in step with the other engine's 0007.
--
-- An agent numbers its batches and the server answers a known (tenant, agent, seq) as a
-- replay. If an agent ever reused a number for new content (its sequence state lost or
-- rolled back by a power cut), that content would be acknowledged and thrown away. The
-- hash (SHA-256 of the batch's bincode form, first 16 bytes, hex) tells a replay from a
-- reuse, which is refused with `seq_reused`. Batches stored before this migration have
-- no hash and are taken as replays, as before.

ALTER TABLE ingested_batches ADD COLUMN content_hash TEXT;
