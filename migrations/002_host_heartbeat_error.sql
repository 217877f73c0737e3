-- Several hosts share one database: each row belongs to the host whose Docker engine runs it.
-- Rows made before this migration belong to no host until an operator assigns one.
ALTER TABLE sandboxes ADD COLUMN host_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sandboxes ADD COLUMN last_heartbeat_at TIMESTAMPTZ;
ALTER TABLE sandboxes ADD COLUMN last_error TEXT;
-- The reconciler reads one host's rows; lists come oldest first.
CREATE INDEX idx_sandboxes_host_status ON sandboxes(host_id, status);
CREATE INDEX idx_sandboxes_created_at ON sandboxes(created_at, sandbox_id);
