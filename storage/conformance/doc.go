// Package conformance is the test suite every [storage.Storage] backend must
// pass: [RunTests] checks each rule in the storage contract and
// [RunConcurrencyTests] checks the rules that only show under concurrent
// use.
//
// It is a normal package so that every backend's tests can import it, but it
// is meant for tests only: production code must not import it (it depends on
// testify). It does not test backend-specific behaviour such as DSN parsing
// or migrations; those stay in each backend's own tests.
package conformance
