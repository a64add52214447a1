package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/spf13/cobra"
)

// adminFlags locate a running hub's admin API.
type adminFlags struct {
	hub, token string
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.hub, "hub", "http://127.0.0.1:8080", "the hub's base URL")
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("LOYALTYHUB_ADMIN_TOKEN"), "the hub's http.admin_token (default $LOYALTYHUB_ADMIN_TOKEN)")
}

func (f *adminFlags) client() *resty.Client {
	c := resty.New().SetBaseURL(strings.TrimRight(f.hub, "/")).SetTimeout(30*time.Second).
		SetHeader("Accept", "application/json")
	if f.token != "" {
		c.SetAuthToken(f.token)
	}
	return c
}

// problemOf turns an error answer into an error naming what the hub said.
func problemOf(resp *resty.Response) error {
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(resp.Body(), &p) == nil && p.Detail != "" {
		return fmt.Errorf("%s: %s", resp.Status(), p.Detail)
	}
	return fmt.Errorf("%s: %s", resp.Status(), strings.TrimSpace(string(resp.Body())))
}

func syncsCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "syncs",
		Short: "Show each sync of a running hub: applied, skipped, dead-lettered, backlog",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Syncs []struct {
					Name, Topic, Connector, Object string
					Applied, Skipped, Dead         int64
					Backlog                        *int
					RunningOn                      string `json:"running_on"`
				} `json:"syncs"`
			}
			resp, err := f.client().R().SetContext(cmd.Context()).SetResult(&out).Get("/v1/syncs")
			if err != nil {
				return err
			}
			if resp.IsError() {
				return problemOf(resp)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SYNC\tFROM\tTO\tAPPLIED\tSKIPPED\tDEAD\tBACKLOG\tRUNNING ON")
			for _, s := range out.Syncs {
				backlog := "?"
				if s.Backlog != nil {
					backlog = strconv.Itoa(*s.Backlog)
				}
				runningOn := s.RunningOn
				if runningOn == "" {
					runningOn = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s.%s\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Topic, s.Connector, s.Object, s.Applied, s.Skipped, s.Dead, backlog, runningOn)
			}
			return w.Flush()
		},
	}
	f.register(cmd)
	return cmd
}

type deadLetter struct {
	ID       int64           `json:"id"`
	Sync     string          `json:"sync"`
	EventID  string          `json:"event_id"`
	Key      string          `json:"key"`
	Version  int64           `json:"version"`
	Reason   string          `json:"reason"`
	Code     string          `json:"code"`
	Attempts int             `json:"attempts"`
	Event    json.RawMessage `json:"event"`
	At       time.Time       `json:"at"`
}

// listDeadLetters fetches every dead letter of sync ("" for all), page by page.
func listDeadLetters(cmd *cobra.Command, c *resty.Client, sync string) ([]deadLetter, error) {
	var all []deadLetter
	after := int64(0)
	for {
		var page struct {
			DeadLetters []deadLetter `json:"dead_letters"`
			NextAfter   int64        `json:"next_after"`
		}
		req := c.R().SetContext(cmd.Context()).SetResult(&page).SetQueryParam("limit", "1000").
			SetQueryParam("after", strconv.FormatInt(after, 10))
		if sync != "" {
			req.SetQueryParam("sync", sync)
		}
		resp, err := req.Get("/v1/dead-letters")
		if err != nil {
			return nil, err
		}
		if resp.IsError() {
			return nil, problemOf(resp)
		}
		all = append(all, page.DeadLetters...)
		if page.NextAfter == 0 {
			return all, nil
		}
		after = page.NextAfter
	}
}

func dlqCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "dlq", Short: "List and replay dead-lettered events of a running hub"}
	f.register(cmd)

	var sync string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--sync NAME]",
		Short: "List dead letters, oldest first, with the reason and the error code",
		RunE: func(cmd *cobra.Command, _ []string) error {
			dls, err := listDeadLetters(cmd, f.client(), sync)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(dls)
			}
			return printDeadLetters(cmd.OutOrStdout(), dls)
		},
	}
	list.Flags().StringVar(&sync, "sync", "", "only this sync")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON, whole events included")

	var all bool
	var replaySync string
	replay := &cobra.Command{
		Use:   "replay ID... | --all [--sync NAME]",
		Short: "Publish dead-lettered events again, unchanged, once their cause is fixed",
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.client()
			var ids []int64
			switch {
			case all && len(args) > 0:
				return fmt.Errorf("give dead-letter ids or --all, not both")
			case all:
				dls, err := listDeadLetters(cmd, c, replaySync)
				if err != nil {
					return err
				}
				for _, d := range dls {
					ids = append(ids, d.ID)
				}
			case len(args) == 0:
				return fmt.Errorf("give the ids of the dead letters to replay (see `loyaltyhub dlq list`), or --all")
			default:
				for _, a := range args {
					id, err := strconv.ParseInt(a, 10, 64)
					if err != nil || id < 1 {
						return fmt.Errorf("%q is not a dead-letter id (a positive integer from `loyaltyhub dlq list`)", a)
					}
					ids = append(ids, id)
				}
			}
			failed := 0
			for _, id := range ids {
				resp, err := c.R().SetContext(cmd.Context()).Post(fmt.Sprintf("/v1/dead-letters/%d/replay", id))
				switch {
				case err != nil:
					return err
				case resp.IsError():
					failed++
					fmt.Fprintf(cmd.ErrOrStderr(), "dead letter %d: %v\n", id, problemOf(resp))
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "dead letter %d replayed\n", id)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d replays failed", failed, len(ids))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d replayed; `loyaltyhub dlq list` shows what is still dead once the syncs have run\n", len(ids))
			return nil
		},
	}
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter (of --sync, if given)")
	replay.Flags().StringVar(&replaySync, "sync", "", "with --all: only this sync")
	cmd.AddCommand(list, replay)
	return cmd
}

func printDeadLetters(w io.Writer, dls []deadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSYNC\tKEY\tVERSION\tCODE\tATTEMPTS\tAT\tREASON")
	for _, d := range dls {
		reason := d.Reason
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", d.ID, d.Sync, d.Key, d.Version, d.Code, d.Attempts, d.At.Format(time.RFC3339), reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s)\n", len(dls))
	return err
}
