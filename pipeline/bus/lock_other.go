//go:build !unix

package bus

// lockStoreDir does nothing where flock is missing: one hub per StoreDir is
// then up to the operator.
func lockStoreDir(string) (func(), error) { return func() {}, nil }

// freeBytes is unknown here.
func freeBytes(string) (int64, bool) { return 0, false }
