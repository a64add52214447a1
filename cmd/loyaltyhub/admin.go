package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
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
	cmd.PersistentFlags().StringVar(&f.token, "token", os.Getenv("LOYALTYHUB_ADMIN_TOKEN"), "an admin token of the hub: one of http.admin_tokens, or http.admin_token (default $LOYALTYHUB_ADMIN_TOKEN)")
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
					Breaker                        string
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
			fmt.Fprintln(w, "SYNC\tFROM\tTO\tAPPLIED\tSKIPPED\tDEAD\tBACKLOG\tBREAKER\tRUNNING ON")
			for _, s := range out.Syncs {
				backlog := "?"
				if s.Backlog != nil {
					backlog = strconv.Itoa(*s.Backlog)
				}
				runningOn := s.RunningOn
				if runningOn == "" {
					runningOn = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s.%s\t%d\t%d\t%d\t%s\t%s\t%s\n", s.Name, s.Topic, s.Connector, s.Object, s.Applied, s.Skipped, s.Dead, backlog, cmp.Or(s.Breaker, "-"), runningOn)
			}
			return w.Flush()
		},
	}
	f.register(cmd)
	return cmd
}

type deadLetter struct {
	ID         int64           `json:"id"`
	Sync       string          `json:"sync"`
	EventID    string          `json:"event_id"`
	Key        string          `json:"key"`
	Version    int64           `json:"version"`
	Reason     string          `json:"reason"`
	Code       string          `json:"code"`
	Attempts   int             `json:"attempts"`
	Event      json.RawMessage `json:"event,omitempty"`
	At         time.Time       `json:"at"`
	Superseded bool            `json:"superseded"`
}

// dlFilter is the dead-letter filter of the dlq commands' flags.
type dlFilter struct {
	sync, code, key, since, until string
	superseded                    bool
}

func (f *dlFilter) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.sync, "sync", "", "only this sync")
	cmd.Flags().StringVar(&f.code, "code", "", "only this error code (e.g. INVALID_FIELD)")
	cmd.Flags().StringVar(&f.key, "key", "", "only this record key")
	cmd.Flags().StringVar(&f.since, "since", "", "only those dead-lettered at or after this time: RFC 3339 (2026-05-01T12:00:00Z), or a duration back from now (24h)")
	cmd.Flags().StringVar(&f.until, "until", "", "only those dead-lettered before this time: RFC 3339, or a duration back from now")
	cmd.Flags().BoolVar(&f.superseded, "superseded", false, "only the superseded ones (a newer version of the key is applied)")
}

func (f dlFilter) empty() bool { return f == dlFilter{} }

// when reads a --since or --until value: an RFC 3339 time or a duration
// back from now.
func when(flag, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("--%s %q: give an RFC 3339 time (2026-05-01T12:00:00Z) or a duration back from now (24h, 90m)", flag, v)
}

// fields returns the filter as the API names its fields, times resolved.
func (f dlFilter) fields(now time.Time) (map[string]string, error) {
	since, err := when("since", f.since, now)
	if err != nil {
		return nil, err
	}
	until, err := when("until", f.until, now)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range map[string]string{"sync": f.sync, "code": f.code, "key": f.key, "since": since, "until": until} {
		if v != "" {
			out[k] = v
		}
	}
	if f.superseded {
		out["superseded"] = "true"
	}
	return out, nil
}

// listDeadLetters fetches every dead letter the filter selects, page by page.
func listDeadLetters(cmd *cobra.Command, c *resty.Client, f dlFilter) ([]deadLetter, error) {
	params, err := f.fields(time.Now())
	if err != nil {
		return nil, err
	}
	var all []deadLetter
	after := int64(0)
	for {
		var page struct {
			DeadLetters []deadLetter `json:"dead_letters"`
			NextAfter   int64        `json:"next_after"`
		}
		resp, err := c.R().SetContext(cmd.Context()).SetResult(&page).SetQueryParams(params).SetQueryParam("limit", "1000").
			SetQueryParam("after", strconv.FormatInt(after, 10)).Get("/v1/dead-letters")
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
	cmd := &cobra.Command{Use: "dlq", Short: "List, sum up, replay and discard dead-lettered events of a running hub"}
	f.register(cmd)

	var lf dlFilter
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--sync NAME] [--code CODE] [--key KEY] [--since T] [--until T] [--superseded]",
		Short: "List dead letters, oldest first, with the reason and the error code",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dls, err := listDeadLetters(cmd, f.client(), lf)
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
	lf.register(list)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON, whole events included")

	var sf dlFilter
	summary := &cobra.Command{
		Use:   "summary [--sync NAME] [--code CODE] [--since T] [--until T]",
		Short: "Count dead letters per sync and error code, with how many are superseded, the oldest and the newest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			params, err := sf.fields(time.Now())
			if err != nil {
				return err
			}
			var out struct {
				Groups []struct {
					Sync, Code        string
					Count, Superseded int64
					Oldest, Newest    time.Time
				} `json:"groups"`
				Total, Superseded int64
			}
			resp, err := f.client().R().SetContext(cmd.Context()).SetResult(&out).SetQueryParams(params).Get("/v1/dead-letters/summary")
			if err != nil {
				return err
			}
			if resp.IsError() {
				return problemOf(resp)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SYNC\tCODE\tCOUNT\tSUPERSEDED\tOLDEST\tNEWEST")
			for _, g := range out.Groups {
				code := g.Code
				if code == "" {
					code = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\n", g.Sync, code, g.Count, g.Superseded, g.Oldest.Format(time.RFC3339), g.Newest.Format(time.RFC3339))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d dead letter(s), %d superseded\n", out.Total, out.Superseded)
			return nil
		},
	}
	sf.register(summary)

	var rf dlFilter
	var all bool
	replay := &cobra.Command{
		Use:   "replay ID... | --all [--sync NAME] [--code CODE] [--key KEY] [--since T] [--until T]",
		Short: "Publish dead-lettered events again, unchanged, once their cause is fixed",
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.client()
			var ids []int64
			switch {
			case all && len(args) > 0:
				return fmt.Errorf("give dead-letter ids or --all, not both")
			case !all && !rf.empty():
				return fmt.Errorf("the filters (--sync, --code, ...) go with --all")
			case all:
				dls, err := listDeadLetters(cmd, c, rf)
				if err != nil {
					return err
				}
				for _, d := range dls {
					ids = append(ids, d.ID)
				}
			case len(args) == 0:
				return fmt.Errorf("give the ids of the dead letters to replay (see `loyaltyhub dlq list`), or --all")
			default:
				var err error
				if ids, err = parseIDs(args); err != nil {
					return err
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
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter the filters select (all of them without filters)")
	rf.register(replay)
	replay.Flags().Lookup("superseded").Hidden = true // a superseded replay is skipped as stale

	cmd.AddCommand(list, summary, replay, discardCmd(&f))
	return cmd
}

func parseIDs(args []string) ([]int64, error) {
	ids := make([]int64, 0, len(args))
	for _, a := range args {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			return nil, fmt.Errorf("%q is not a dead-letter id (a positive integer from `loyaltyhub dlq list`)", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// discardAnswer is the answer of POST /v1/dead-letters/discard.
type discardAnswer struct {
	Discarded []deadLetter `json:"discarded"`
	NotFound  []int64      `json:"not_found"`
	More      bool         `json:"more"`
	AuditID   int64        `json:"audit_id"`
}

func discardCmd(f *adminFlags) *cobra.Command {
	var df dlFilter
	var reason string
	cmd := &cobra.Command{
		Use:   "discard ID... | [--sync NAME] [--code CODE] [--key KEY] [--since T] [--until T] [--superseded]",
		Short: "Give dead letters up: by id, by filter (--superseded: those a newer version has overtaken); audited",
		Long: `Discards dead letters for good: they leave the queue, their events' outcomes stay dead.
Name them by id, or by filter: every dead letter the filters select up to now (a filter without
--until stops at the time the command started), in requests of 1000. --superseded discards those
whose key has a newer version applied since: the target already holds something newer.

The key's version guard is left as it is: a later event of the key applies when its version is
newer than the discarded one. A key frozen by an absurd version needs ` + "`loyaltyhub keys reset`" + `.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := f.client()
			out := cmd.OutOrStdout()
			send := func(body map[string]any) (discardAnswer, error) {
				var ans discardAnswer
				if reason != "" {
					body["reason"] = reason
				}
				resp, err := c.R().SetContext(cmd.Context()).SetBody(body).SetResult(&ans).Post("/v1/dead-letters/discard")
				if err != nil {
					return ans, err
				}
				if resp.IsError() {
					return ans, problemOf(resp)
				}
				for _, d := range ans.Discarded {
					fmt.Fprintf(out, "dead letter %d discarded (sync %s, key %s, version %d, %s)\n", d.ID, d.Sync, d.Key, d.Version, cmp.Or(d.Code, "no code"))
				}
				return ans, nil
			}
			total, missing := 0, 0
			switch {
			case len(args) > 0 && !df.empty():
				return fmt.Errorf("give dead-letter ids or filters, not both")
			case len(args) > 0:
				ids, err := parseIDs(args)
				if err != nil {
					return err
				}
				for i := 0; i < len(ids); i += 1000 {
					ans, err := send(map[string]any{"ids": ids[i:min(i+1000, len(ids))]})
					if err != nil {
						return err
					}
					total += len(ans.Discarded)
					for _, id := range ans.NotFound {
						missing++
						fmt.Fprintf(cmd.ErrOrStderr(), "dead letter %d: there is no such dead letter\n", id)
					}
				}
			case df.empty():
				return fmt.Errorf("give the ids of the dead letters to discard (see `loyaltyhub dlq list`), or filters: --sync, --code, --key, --since, --until, --superseded")
			default:
				now := time.Now()
				fields, err := df.fields(now)
				if err != nil {
					return err
				}
				if _, ok := fields["until"]; !ok {
					fields["until"] = now.UTC().Format(time.RFC3339Nano) // what was there when asked
				}
				filter := map[string]any{}
				for k, v := range fields {
					filter[k] = v
				}
				if df.superseded {
					filter["superseded"] = true
				}
				for {
					ans, err := send(map[string]any{"filter": filter})
					if err != nil {
						return err
					}
					total += len(ans.Discarded)
					if !ans.More || len(ans.Discarded) == 0 {
						break
					}
				}
			}
			fmt.Fprintf(out, "%d dead letter(s) discarded; `loyaltyhub audit` lists the discard\n", total)
			if missing > 0 {
				return fmt.Errorf("%d of the ids given named no dead letter", missing)
			}
			return nil
		},
	}
	df.register(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	return cmd
}

func printDeadLetters(w io.Writer, dls []deadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSYNC\tKEY\tVERSION\tCODE\tATTEMPTS\tAT\tSUPERSEDED\tREASON")
	superseded := 0
	for _, d := range dls {
		reason := d.Reason
		if len(reason) > 120 {
			reason = reason[:117] + "..."
		}
		sup := "-"
		if d.Superseded {
			sup = "yes"
			superseded++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Sync, d.Key, d.Version, d.Code, d.Attempts, d.At.Format(time.RFC3339), sup, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter(s), %d superseded\n", len(dls), superseded)
	return err
}

func keysCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{Use: "keys", Short: "Recover records' keys in a running hub's version guard"}
	f.register(cmd)
	var reason string
	reset := &cobra.Command{
		Use:   "reset SYNC KEY --reason TEXT",
		Short: "Unfreeze a key: delete its version-guard row in the sync and discard its dead letters; audited",
		Long: `A key whose version-guard row holds an absurd version (say 2^63-1, accepted before ingress
bounded versions) makes every later event of the key stale. A reset deletes that row in the
sync, discards the key's dead letters there and lowers the key's cross-reference entry to
version 0 (keeping its record id), so the key's next event applies whatever its version. The
audit log keeps what the row held, who asked and why. Operator role only.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: say why the key is reset, for the audit log")
			}
			var out struct {
				Guard *struct {
					Version int64     `json:"version"`
					State   string    `json:"state"`
					EventID string    `json:"event_id"`
					At      time.Time `json:"updated_at"`
				} `json:"guard"`
				Discarded []deadLetter `json:"discarded"`
				AuditID   int64        `json:"audit_id"`
			}
			resp, err := f.client().R().SetContext(cmd.Context()).SetBody(map[string]string{"reason": reason}).SetResult(&out).
				Post("/v1/syncs/" + url.PathEscape(args[0]) + "/keys/" + url.PathEscape(args[1]) + "/reset")
			if err != nil {
				return err
			}
			if resp.IsError() {
				return problemOf(resp)
			}
			w := cmd.OutOrStdout()
			if g := out.Guard; g != nil {
				fmt.Fprintf(w, "guard row of %s in %s deleted: it held version %d, %s (event %s, %s)\n", args[1], args[0], g.Version, g.State, g.EventID, g.At.Format(time.RFC3339))
			} else {
				fmt.Fprintf(w, "%s had no guard row in %s\n", args[1], args[0])
			}
			fmt.Fprintf(w, "%d dead letter(s) discarded; audit entry %d; the key's next event applies whatever its version\n", len(out.Discarded), out.AuditID)
			return nil
		},
	}
	reset.Flags().StringVar(&reason, "reason", "", "why the key is reset, for the audit log (required)")
	cmd.AddCommand(reset)
	return cmd
}

func auditCmd() *cobra.Command {
	var f adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit [--json]",
		Short: "Print the audit log of a running hub: every discard, replay and key reset, who made it and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := f.client()
			var all []auditEntry
			after := int64(0)
			for {
				var page struct {
					Entries   []auditEntry `json:"entries"`
					NextAfter int64        `json:"next_after"`
				}
				resp, err := c.R().SetContext(cmd.Context()).SetResult(&page).SetQueryParam("limit", "1000").
					SetQueryParam("after", strconv.FormatInt(after, 10)).Get("/v1/audit")
				if err != nil {
					return err
				}
				if resp.IsError() {
					return problemOf(resp)
				}
				all = append(all, page.Entries...)
				if page.NextAfter == 0 {
					break
				}
				after = page.NextAfter
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tAT\tBY\tACTION\tSYNC\tKEY\tDEAD LETTERS\tGUARD BEFORE\tREASON")
			for _, e := range all {
				guard := "-"
				if len(e.Guards) == 1 {
					g := e.Guards[0]
					guard = fmt.Sprintf("v%d %s", g.Version, g.State)
				} else if len(e.Guards) > 1 {
					guard = fmt.Sprintf("%d rows", len(e.Guards))
				}
				fmt.Fprintf(tw, "%d\t%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.Format(time.RFC3339), e.Actor, e.Role, e.Action,
					cmp.Or(e.Sync, "-"), cmp.Or(e.Key, "-"), letterIDs(e.DeadLetters), guard, cmp.Or(e.Reason, "-"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "%d audit entr%s\n", len(all), map[bool]string{true: "y", false: "ies"}[len(all) == 1])
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: the dead letters, the guard rows as they were and the filter of each entry")
	return cmd
}

// auditEntry is an entry of GET /v1/audit.
type auditEntry struct {
	ID          int64         `json:"id"`
	At          time.Time     `json:"at"`
	Actor       string        `json:"actor"`
	Role        string        `json:"role"`
	Action      string        `json:"action"`
	Sync        string        `json:"sync,omitempty"`
	Key         string        `json:"key,omitempty"`
	Reason      string        `json:"reason,omitempty"`
	Filter      any           `json:"filter,omitempty"`
	DeadLetters []auditLetter `json:"dead_letters,omitempty"`
	Guards      []auditGuard  `json:"guards,omitempty"`
	Xref        any           `json:"xref,omitempty"`
}

// auditLetter is a dead letter an audit entry names.
type auditLetter struct {
	ID      int64  `json:"id"`
	Sync    string `json:"sync"`
	EventID string `json:"event_id"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Code    string `json:"code,omitempty"`
}

// auditGuard is a guard row as an audit entry keeps it.
type auditGuard struct {
	Sync      string    `json:"sync"`
	Key       string    `json:"key"`
	Version   int64     `json:"version"`
	State     string    `json:"state"`
	EventID   string    `json:"event_id"`
	UpdatedAt time.Time `json:"updated_at"`
}

// letterIDs lists the ids of an entry's dead letters, shortened past 5.
func letterIDs(dls []auditLetter) string {
	if len(dls) == 0 {
		return "-"
	}
	var ids []string
	for i, d := range dls {
		if i == 5 {
			ids = append(ids, fmt.Sprintf("+%d", len(dls)-5))
			break
		}
		ids = append(ids, strconv.FormatInt(d.ID, 10))
	}
	return strings.Join(ids, ",")
}
