-- Leases: which hub replica runs a sync (see Store.AcquireLease). Expiry is
-- judged by the database's clock, so replicas' clocks need not agree.
CREATE TABLE leases (
    name        text        NOT NULL PRIMARY KEY,
    holder      text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL
);
