// Package storage defines the persistence contract of wxoidc: one [Storage]
// interface that every backend (memory, SQLite, PostgreSQL) implements, the
// records it stores, and the sentinel errors callers branch on.
//
// The contract is written down in the doc comments of each method and enforced
// by the shared suite in package storage/conformance; a backend is correct when
// that suite passes. Storage knows nothing of HTTP: it never returns errors with
// a status code, and it stores secrets (signing keys, WeChat session keys) only
// as opaque bytes that its callers have already encrypted.
package storage
