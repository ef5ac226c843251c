package eureka_test

import (
	"testing"

	"github.com/regshift/regshift/registries/registrytest"
)

// TestMain fails the package when a goroutine outlives its tests.
func TestMain(m *testing.M) { registrytest.VerifyNoLeaks(m) }
