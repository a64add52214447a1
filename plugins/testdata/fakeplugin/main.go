// Command fakeplugin serves the fake test connector as a plugin.
package main

import (
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/fakeconn"
	"github.com/loyaltyhub/loyaltyhub/plugins/sdk"
)

func main() {
	sdk.Serve(fakeconn.New(sdk.Logger()))
}
