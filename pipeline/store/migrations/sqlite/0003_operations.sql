-- Operators' tools and ingress replay protection. Times are Unix
-- microseconds (UTC).

-- The audit log: every discard, replay and key reset, who asked and why.
-- detail is JSON: the dead letters acted on, the guard rows as they were,
-- the filter used.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    role   TEXT    NOT NULL,
    action TEXT    NOT NULL,
    sync   TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    reason TEXT    NOT NULL,
    detail TEXT    NOT NULL
);

-- Webhook deliveries seen, per source, until they expire (see
-- Store.RememberDelivery).
CREATE TABLE deliveries (
    source TEXT    NOT NULL,
    id     TEXT    NOT NULL,
    digest TEXT    NOT NULL,
    until  INTEGER NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;
CREATE INDEX deliveries_until ON deliveries (until);

-- A key's dead letters, for filters by key and key resets.
CREATE INDEX dead_letters_sync_key ON dead_letters (sync, key);
