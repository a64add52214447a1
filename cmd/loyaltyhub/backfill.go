package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/loyaltyhub/loyaltyhub/pipeline"
)

func backfillCmd() *cobra.Command {
	var (
		f        adminFlags
		noWait   bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "backfill SYNC",
		Short: "Write a sync's history to its target again (after the target lost records, or a mapping gained a field)",
		Long: `Asks the running hub to backfill SYNC: the newest event of every key the bus holds (every
change, for a segment sync) goes through the sync's batches again and is written even when its
version is already applied; a version older than one applied stays skipped, so live changes are
never undone. Large batches go through the connector's bulk path (Bulk API 2.0 for Salesforce:
give the sync a large batch.size). The hub runs it on the replica that runs the sync.

Prints progress until the backfill ends; exits non-zero when records failed (their reasons are
listed) or the backfill stopped early.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sync, c := args[0], f.client()
			path := "/v1/syncs/" + sync + "/backfill"
			var st pipeline.BackfillStatus
			resp, err := c.R().SetContext(cmd.Context()).SetResult(&st).Post(path)
			if err != nil {
				return err
			}
			if resp.IsError() {
				return problemOf(resp)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "backfill of %s started at %s\n", sync, st.StartedAt.Format(time.RFC3339))
			if noWait {
				return nil
			}
			last := time.Now()
			for st.Running {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(interval):
				}
				resp, err = c.R().SetContext(cmd.Context()).SetResult(&st).Get(path)
				if err != nil {
					return err
				}
				if resp.StatusCode() != http.StatusOK {
					return problemOf(resp)
				}
				if st.Running && time.Since(last) >= 5*time.Second {
					last = time.Now()
					fmt.Fprintf(out, "  %d of %d written (%d skipped, %d failed)\n", st.Applied, st.Selected, st.Skipped, st.Failed)
				}
			}
			fmt.Fprintf(out, "done in %s: %d events on the bus, %d selected (the newest per key), %d written, %d skipped (a newer version applied, or filtered), %d failed\n",
				st.FinishedAt.Sub(st.StartedAt).Round(time.Millisecond), st.Scanned, st.Selected, st.Applied, st.Skipped, st.Failed)
			for _, fl := range st.Failures {
				fmt.Fprintf(out, "  failed: key %s (event %s): %s\n", fl.Key, fl.EventID, fl.Reason)
			}
			switch {
			case st.Error != "":
				return fmt.Errorf("the backfill stopped early: %s", st.Error)
			case st.Failed > 0:
				return errors.New("some records failed: fix them (the reasons are above) and backfill again")
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "start the backfill and return; follow it with GET /v1/syncs/SYNC/backfill")
	cmd.Flags().DurationVar(&interval, "poll", time.Second, "how often to read the backfill's progress")
	return cmd
}
