package conformance_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/plugins/conformance"
	"github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers/emulator"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/plugintest"
)

var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plugins-conformance-test")
	if err != nil {
		panic(err)
	}
	bins, err = plugintest.Build(dir,
		plugintest.Module+"/plugins/examples/geooffers",
		plugintest.Module+"/plugins/testdata/broken",
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestExamplePluginPasses(t *testing.T) {
	emu := emulator.New("conf-key")
	srv := httptest.NewServer(emu)
	defer srv.Close()
	t.Setenv("GEOOFFERS_URL", srv.URL)
	t.Setenv("GEOOFFERS_API_KEY", "conf-key")
	fx, err := conformance.LoadFixture("../examples/geooffers/conformance.json")
	require.NoError(t, err)

	rep := conformance.Run(context.Background(), bins["geooffers"], conformance.Options{Fixture: fx})
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	assert.False(t, rep.Failed())
	assert.Equal(t, 12, rep.Count(conformance.Pass), "every check runs and passes")
	assert.Equal(t, "geooffers 0.1.0", rep.Plugin)
	// The checks really went through to the vendor's service.
	assert.Len(t, emu.Vouchers(), 3)
	assert.Contains(t, emu.Members(), "conf-big-99")
}

func TestBrokenPluginFailsWithClearReasons(t *testing.T) {
	fx, err := conformance.LoadFixture("../testdata/broken/fixture.json")
	require.NoError(t, err)
	rep := conformance.Run(context.Background(), bins["broken"], conformance.Options{Fixture: fx})
	var out bytes.Buffer
	rep.WriteText(&out)
	t.Log("\n" + out.String())
	require.True(t, rep.Failed())

	want := map[string]string{
		conformance.CheckDescribe:   "config_schema is empty",
		conformance.CheckBadConfig:  `accepted the bad config {"endpoint": 42}`,
		conformance.CheckWrite:      `things: record 1 (key "t2") is applied, want permanent`,
		conformance.CheckLargeBatch: "", // passes: it answers one result per record
		conformance.CheckRead:       `a page of 1 changes left the cursor at ""`,
		conformance.CheckCancel:     "Check did not succeed within 2s",
	}
	for name, reason := range want {
		c, ok := rep.Find(name)
		require.True(t, ok, name)
		if reason == "" {
			assert.Equal(t, conformance.Pass, c.Outcome, "%s: %s", name, c.Reason)
			continue
		}
		assert.Equal(t, conformance.Fail, c.Outcome, name)
		assert.Contains(t, c.Reason, reason, name)
	}
	c, _ := rep.Find(conformance.CheckIdempotent)
	assert.Equal(t, conformance.Fail, c.Outcome)
	assert.Contains(t, c.Reason, `things re-written: record 0 (key "t1") now has target id "id-`)
	assert.Contains(t, c.Reason, "re-writing must hit the same target record")
	c, _ = rep.Find(conformance.CheckCrash)
	assert.Equal(t, conformance.Fail, c.Outcome)
	assert.Contains(t, c.Reason, "things after a crash and restart: record 0")
	assert.Contains(t, out.String(), "failed")
}

func TestWithoutFixtureOnlyTheGenericChecksRun(t *testing.T) {
	rep := conformance.Run(context.Background(), bins["broken"], conformance.Options{})
	c, _ := rep.Find(conformance.CheckHandshake)
	assert.Equal(t, conformance.Pass, c.Outcome)
	c, _ = rep.Find(conformance.CheckConfigure)
	assert.Equal(t, conformance.Skip, c.Outcome)
	assert.Equal(t, "no fixture given", c.Reason)
	c, _ = rep.Find(conformance.CheckBadConfig)
	assert.Equal(t, conformance.Fail, c.Outcome, "the generic bad configs catch a plugin that accepts anything")
}

func TestAPluginThatIsNotOneFailsTheHandshake(t *testing.T) {
	rep := conformance.Run(context.Background(), "/bin/echo", conformance.Options{})
	require.True(t, rep.Failed())
	c, _ := rep.Find(conformance.CheckHandshake)
	assert.Contains(t, c.Reason, "is not a loyaltyhub connector plugin")
	c, _ = rep.Find(conformance.CheckDescribe)
	assert.Equal(t, conformance.Skip, c.Outcome)
}
