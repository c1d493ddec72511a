package faulttest

import (
	"os"
	"testing"

	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	coordtest.RemoveBuilt()
	os.Exit(code)
}
