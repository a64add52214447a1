// Command geooffers is the GeoOffers connector plugin for loyaltyhub, built
// as its own binary with the plugin SDK. The hub starts it; run by hand as
// `geooffers emulator` it serves the GeoOffers emulator instead, so the
// whole flow runs offline.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers/connector"
	"github.com/loyaltyhub/loyaltyhub/plugins/examples/geooffers/emulator"
	"github.com/loyaltyhub/loyaltyhub/plugins/sdk"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "emulator" {
		if err := runEmulator(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "geooffers emulator:", err)
			os.Exit(1)
		}
		return
	}
	sdk.Serve(connector.New(sdk.Logger()))
}

func runEmulator(args []string) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8089", "address to listen on")
	key := fs.String("api-key", "geo-test-key", "the API key the emulator accepts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log.Printf("GeoOffers emulator on http://%s (api key %q)", *addr, *key)
	srv := &http.Server{Addr: *addr, Handler: emulator.New(*key), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
