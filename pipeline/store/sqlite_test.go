package store_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// sqliteDB returns an opener of Stores on one fresh database file in a
// nested temporary directory that OpenSQLite has to create.
func sqliteDB(t testing.TB) func() store.Store {
	path := filepath.Join(t.TempDir(), "data", "state", "loyaltyhub.db")
	return func() store.Store {
		s, err := store.OpenSQLite(t.Context(), path, testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
}

func TestSQLite(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) store.Store { return sqliteDB(t)() })
}

func TestSQLiteReplicas(t *testing.T) {
	runReplicaSuite(t, func(t *testing.T) func() store.Store { return sqliteDB(t) })
}

func TestSQLiteFileSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "state.db")
	s, err := store.OpenSQLite(t.Context(), path, nil)
	require.NoError(t, err)
	defer s.Close()
	_, err = os.Stat(path)
	require.NoError(t, err, "file created with its directories")
	_, err = os.Stat(path + "-wal")
	assert.NoError(t, err, "journal_mode is WAL")
}

// TestSQLiteNewerSchema checks that a binary refuses a database migrated by
// a newer one instead of writing to a schema it does not know.
func TestSQLiteNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := store.OpenSQLite(t.Context(), path, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO loyaltyhub_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = store.OpenSQLite(t.Context(), path, nil)
	assert.ErrorContains(t, err, "schema version 999, newer than this binary knows (3)")
	assert.ErrorContains(t, err, path)
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name, driver, dsn, want string
	}{
		{"unknown driver", "mysql", "x", `unknown driver "mysql": valid drivers are "sqlite" and "postgres"`},
		{"empty sqlite path", "sqlite", "", "database path is empty"},
		{"memory", "sqlite", ":memory:", "give a plain file path"},
		{"uri", "sqlite", "file:state.db?mode=ro", "give a plain file path"},
		{"query", "sqlite", "state.db?_pragma=x", "must not contain '?'"},
		{"empty postgres dsn", "postgres", "", "DSN is empty"},
		{"bad postgres dsn", "postgres", "postgres://h:notaport/db", "parsing the DSN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(ctx, tc.driver, tc.dsn, nil)
			assert.ErrorContains(t, err, tc.want)
			assert.Nil(t, s, "a nil Store, not a Store holding a nil pointer")
		})
	}

	// A directory where the file should be.
	dir := t.TempDir()
	_, err := store.Open(ctx, "sqlite", dir, nil)
	assert.ErrorContains(t, err, dir)

	s, err := store.Open(ctx, "sqlite", filepath.Join(dir, "ok.db"), nil)
	require.NoError(t, err)
	assert.IsType(t, &store.SQLite{}, s)
	require.NoError(t, s.Close())
}

func BenchmarkSQLiteBeginFinish200(b *testing.B) {
	benchBeginFinish(b, sqliteDB(b)())
}
