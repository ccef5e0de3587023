// Package memory implements [storage.Storage] in process memory, with maps
// guarded by one mutex; it is the backend for tests and `wxoidc dev`.
//
// Records are stored as serialized copies, exactly as the SQL backends store
// them, so the memory store shows the same aliasing and round-trip behaviour.
// It keeps nothing across restarts and cannot be shared between replicas; use
// package storage/sqlite or storage/postgres for that.
package memory
