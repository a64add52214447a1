-- Operators' tools and ingress replay protection.

-- The audit log: every discard, replay and key reset, who asked and why.
-- detail is JSON: the dead letters acted on, the guard rows as they were,
-- the filter used.
CREATE TABLE audit (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL,
    actor  text        NOT NULL,
    role   text        NOT NULL,
    action text        NOT NULL,
    sync   text        NOT NULL,
    key    text        NOT NULL,
    reason text        NOT NULL,
    detail text        NOT NULL
);

-- Webhook deliveries seen, per source, until they expire (see
-- Store.RememberDelivery).
CREATE TABLE deliveries (
    source text        NOT NULL,
    id     text        NOT NULL,
    digest text        NOT NULL,
    until  timestamptz NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE INDEX deliveries_until ON deliveries (until);

-- A key's dead letters, for filters by key and key resets.
CREATE INDEX dead_letters_sync_key ON dead_letters (sync, key);
