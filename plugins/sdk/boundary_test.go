package sdk_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVendorsImportTheSDKAlone checks the boundary: the SDK and the example
// vendor plugin import nothing of the host.
func TestVendorsImportTheSDKAlone(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps",
		"github.com/loyaltyhub/loyaltyhub/plugins/sdk",
		"github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(dep, "github.com/loyaltyhub/loyaltyhub/")
		if !ours {
			continue
		}
		allowed := rest == "connectors" || strings.HasPrefix(rest, "plugins/sdk") ||
			strings.HasPrefix(rest, "plugins/internal/wire") || strings.HasPrefix(rest, "plugins/internal/pb") ||
			rest == "plugins/internal/sockdir" ||
			strings.HasPrefix(rest, "plugins/examples/geooffers")
		require.True(t, allowed, "a vendor plugin depends on %s", dep)
	}
}
