package host_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
)

// The fake connector implements no RecordGetter: the plugin answers
// UNIMPLEMENTED, as one built before the RPC existed does, and the host turns
// that into a permanent "cannot read records" error. The positive path runs
// through the Salesforce connector in cmd/loyaltyhub (mapping preview).
func TestGetRecordOfAPluginThatCannotReadRecords(t *testing.T) {
	p := start(t, fakeConfig(t, "fakey"), nil)
	configure(t, p, fakeconn.Config{})
	assert.False(t, p.Capabilities().GetRecord)

	_, found, err := p.GetRecord(context.Background(), "Thing", "Key__c", "k1")
	require.Error(t, err)
	assert.False(t, found)
	assert.ErrorIs(t, err, connectors.ErrCannotReadRecords)
	assert.Equal(t, connectors.Permanent, connectors.KindOf(err))
	assert.Contains(t, err.Error(), "plugin fakey: get record: this connector cannot read records")
	assert.Equal(t, 0, p.Restarts(), "UNIMPLEMENTED is an answer, not a dead process")
}
