-- Per-sandbox templates and lifetimes. Rows of earlier releases, and rows the release before this
-- one still inserts during an upgrade, get the values that release used: the default template and
-- MATRX_MAX_SESSION_DURATION_SECONDS's default (7200 s) from their creation.
ALTER TABLE sandboxes ADD COLUMN template TEXT NOT NULL DEFAULT 'default';
ALTER TABLE sandboxes ADD COLUMN ttl_seconds INTEGER NOT NULL DEFAULT 7200;
ALTER TABLE sandboxes ADD COLUMN expires_at TIMESTAMPTZ;
UPDATE sandboxes SET expires_at = created_at + make_interval(secs => ttl_seconds);
ALTER TABLE sandboxes ALTER COLUMN expires_at SET DEFAULT (NOW() + interval '7200 seconds');
ALTER TABLE sandboxes ALTER COLUMN expires_at SET NOT NULL;
-- Idle stop: off for earlier rows; their last activity is their last change.
ALTER TABLE sandboxes ADD COLUMN idle_timeout_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sandboxes ADD COLUMN last_activity_at TIMESTAMPTZ NOT NULL DEFAULT NOW();
UPDATE sandboxes SET last_activity_at = updated_at;
