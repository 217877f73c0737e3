-- The cold tier: whether a sandbox's /data/cold shows its user's prefix of the bucket. Rows of
-- earlier releases had no cold tier of any kind; NULL says so.
ALTER TABLE sandboxes ADD COLUMN cold_tier TEXT;
