package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

const postgresEnv = "LOYALTYHUB_TEST_POSTGRES_DSN"

// postgresDB returns an opener of Stores on a fresh schema of the test
// database (created by OpenPostgres from the DSN's search_path), dropped at
// the end of the test. It skips the test when LOYALTYHUB_TEST_POSTGRES_DSN is
// not set.
func postgresDB(t testing.TB) func() store.Store {
	open, _, _ := postgresSchema(t)
	return open
}

// postgresSchema is postgresDB, also returning the schema's name and the DSN.
func postgresSchema(t testing.TB) (open func() store.Store, schema, dsn string) {
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skipf("%s is not set: skipping the PostgreSQL tests (e.g. %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable')",
			postgresEnv, postgresEnv)
	}
	schema = fmt.Sprintf("lhtest_%d_%08x", time.Now().Unix(), rand.Uint32())
	dsn = withSearchPath(t, base, schema)
	t.Cleanup(func() {
		// Runs after the Stores' own cleanups (LIFO), when they are closed.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return func() store.Store {
		s, err := store.OpenPostgres(t.Context(), dsn, testLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}, schema, dsn
}

func withSearchPath(t testing.TB, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		require.NoError(t, err, postgresEnv)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

func TestPostgres(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) store.Store { return postgresDB(t)() })
}

func TestPostgresReplicas(t *testing.T) {
	runReplicaSuite(t, func(t *testing.T) func() store.Store { return postgresDB(t) })
}

// TestPostgresSchema checks that the tables land in the DSN's schema and
// that opening again (as a second replica would) applies nothing twice.
func TestPostgresSchema(t *testing.T) {
	_, schema, dsn := postgresSchema(t)
	// Replicas starting together: the migration runs once.
	type opened struct {
		s   *store.Postgres
		err error
	}
	ch := make(chan opened, 3)
	for range 3 {
		go func() {
			s, err := store.OpenPostgres(t.Context(), dsn, nil)
			ch <- opened{s, err}
		}()
	}
	var s *store.Postgres
	for range 3 {
		o := <-ch
		require.NoError(t, o.err)
		t.Cleanup(func() { o.s.Close() })
		s = o.s
	}
	conn, err := pgx.Connect(t.Context(), os.Getenv(postgresEnv))
	require.NoError(t, err)
	defer conn.Close(context.Background())

	rows, err := conn.Query(t.Context(), `SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, schema)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"audit", "cursors", "dead_letters", "deliveries", "guard", "leases", "loyaltyhub_migrations", "outcomes", "xref"}, tables)
	var n int
	require.NoError(t, conn.QueryRow(t.Context(),
		`SELECT count(*) FROM `+pgx.Identifier{schema, "loyaltyhub_migrations"}.Sanitize()).Scan(&n))
	assert.Equal(t, 3, n, "each migration applied once")
	require.NoError(t, s.SetCursor(t.Context(), "c", "v"))
	var v string
	require.NoError(t, conn.QueryRow(t.Context(),
		`SELECT value FROM `+pgx.Identifier{schema, "cursors"}.Sanitize()+` WHERE name = 'c'`).Scan(&v))
	assert.Equal(t, "v", v, "written to the DSN's schema")
}

func BenchmarkPostgresBeginFinish200(b *testing.B) {
	benchBeginFinish(b, postgresDB(b)())
}
