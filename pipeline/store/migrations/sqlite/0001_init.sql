-- loyaltyhub state store, SQLite. Times are Unix microseconds (UTC).

-- The version guard: per (sync, key) the newest version begun and its state.
CREATE TABLE guard (
    sync       TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'applied', 'dead')),
    event_id   TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sync, key)
) WITHOUT ROWID;

-- The cross-reference: a source key's record id in a target system/object.
-- target_id '' is a tombstone (deleted), kept so that an older version cannot
-- bring the entry back; Prune removes old tombstones.
CREATE TABLE xref (
    system     TEXT    NOT NULL,
    object     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    target_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (system, object, key)
) WITHOUT ROWID;
CREATE INDEX xref_tombstones ON xref (updated_at) WHERE target_id = '';

-- The outcome log: the final word on each event, once per (sync, event id).
CREATE TABLE outcomes (
    sync     TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    outcome  TEXT    NOT NULL CHECK (outcome IN ('applied', 'skipped', 'dead')),
    reason   TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (sync, event_id)
) WITHOUT ROWID;
CREATE INDEX outcomes_at ON outcomes (at);

-- The dead-letter queue: one row per dead (sync, event id), replayable.
CREATE TABLE dead_letters (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    sync     TEXT    NOT NULL,
    event_id TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    reason   TEXT    NOT NULL,
    code     TEXT    NOT NULL,
    attempts INTEGER NOT NULL,
    event    BLOB,
    at       INTEGER NOT NULL,
    UNIQUE (sync, event_id)
);
CREATE INDEX dead_letters_sync_id ON dead_letters (sync, id);

-- Source read positions.
CREATE TABLE cursors (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
