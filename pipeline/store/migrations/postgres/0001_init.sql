-- loyaltyhub state store, PostgreSQL. Tables go to the first schema of the
-- connection's search_path.

-- The version guard: per (sync, key) the newest version begun and its state.
CREATE TABLE guard (
    sync       text NOT NULL,
    key        text NOT NULL,
    version    bigint      NOT NULL,
    state      text        NOT NULL CHECK (state IN ('pending', 'applied', 'dead')),
    event_id   text        NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (sync, key)
);

-- The cross-reference: a source key's record id in a target system/object.
-- target_id '' is a tombstone (deleted), kept so that an older version cannot
-- bring the entry back; Prune removes old tombstones.
CREATE TABLE xref (
    system     text NOT NULL,
    object     text NOT NULL,
    key        text NOT NULL,
    target_id  text        NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (system, object, key)
);
CREATE INDEX xref_tombstones ON xref (updated_at) WHERE target_id = '';

-- The outcome log: the final word on each event, once per (sync, event id).
CREATE TABLE outcomes (
    sync     text NOT NULL,
    event_id text NOT NULL,
    key      text        NOT NULL,
    version  bigint      NOT NULL,
    outcome  text        NOT NULL CHECK (outcome IN ('applied', 'skipped', 'dead')),
    reason   text        NOT NULL,
    at       timestamptz NOT NULL,
    PRIMARY KEY (sync, event_id)
);
CREATE INDEX outcomes_at ON outcomes (at);

-- The dead-letter queue: one row per dead (sync, event id), replayable.
CREATE TABLE dead_letters (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sync     text NOT NULL,
    event_id text NOT NULL,
    key      text        NOT NULL,
    version  bigint      NOT NULL,
    reason   text        NOT NULL,
    code     text        NOT NULL,
    attempts integer     NOT NULL,
    event    bytea,
    at       timestamptz NOT NULL,
    UNIQUE (sync, event_id)
);
CREATE INDEX dead_letters_sync_id ON dead_letters (sync, id);

-- Source read positions.
CREATE TABLE cursors (
    name       text NOT NULL PRIMARY KEY,
    value      text        NOT NULL,
    updated_at timestamptz NOT NULL
);
