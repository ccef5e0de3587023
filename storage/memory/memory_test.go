package memory_test

import (
	"testing"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/conformance"
	"github.com/wxoidc/wxoidc/storage/memory"
)

func newStore(*testing.T) storage.Storage { return memory.New() }

func TestConformance(t *testing.T) { conformance.RunTests(t, newStore) }

func TestConcurrency(t *testing.T) { conformance.RunConcurrencyTests(t, newStore) }
