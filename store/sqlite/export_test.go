package sqlite

import "context"

// OpenSinglePool opens the store without the reader pool: every call uses
// the one writer connection. The benchmarks compare both layouts.
func OpenSinglePool(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, false)
}
