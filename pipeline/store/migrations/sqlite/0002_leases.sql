-- Leases: which hub replica runs a sync (see Store.AcquireLease). Times are
-- Unix microseconds (UTC).
CREATE TABLE leases (
    name        TEXT    NOT NULL PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
) WITHOUT ROWID;
