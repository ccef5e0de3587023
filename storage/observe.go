package storage

import "context"

// Observer sees the round trips a backend makes to its database, for
// metrics and tracing. It is called as a round trip starts, with the
// caller's context and a short name of the round trip (see
// [Observable.Observe]), and returns the function the backend calls with
// the round trip's error when it ends. It must be fast and safe for
// concurrent use; it never sees a statement's arguments.
type Observer func(ctx context.Context, op string) (done func(err error))

// Observable is implemented by backends that talk to a database (SQLite,
// PostgreSQL). The memory backend has no round trips to observe.
type Observable interface {
	// Observe makes o see every round trip from now on. Call it once,
	// before the store is used. Round trips are named "begin", "commit",
	// "rollback", "batch" (a transaction's queued writes sent at once),
	// "prepare", "ping", or by the statement's verb and table ("select
	// oauth2_refresh", "insert users").
	Observe(o Observer)
}

// Observers returns an Observer that calls each of obs (nil ones are
// skipped), or nil when none is left.
func Observers(obs ...Observer) Observer {
	var live []Observer
	for _, o := range obs {
		if o != nil {
			live = append(live, o)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return func(ctx context.Context, op string) func(error) {
		dones := make([]func(error), len(live))
		for i, o := range live {
			dones[i] = o(ctx, op)
		}
		return func(err error) {
			for _, d := range dones {
				d(err)
			}
		}
	}
}
