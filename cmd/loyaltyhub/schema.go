package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/config"
	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/connectors/salesforce"
	"github.com/loyaltyhub/loyaltyhub/mappings"
	"github.com/loyaltyhub/loyaltyhub/plugins/host"
)

// schemaReport is what checking a config's mappings against the targets'
// schemas found.
type schemaReport struct {
	// Problems are one line each, `FILE:LINE:COL: path: message`, like the
	// config's own problems: the config file's first, then each mapping
	// file's, in file order. Any of them makes validate fail.
	Problems []string
	// Notes say what could not be checked and why (a connector that cannot
	// describe its objects); they do not make validate fail.
	Notes []string
	// Checked counts the syncs whose mapping was checked.
	Checked int

	found []located
}

// located is one problem and where it is, for sorting.
type located struct {
	file      string
	line, col int
	text      string
}

func (r *schemaReport) configProblem(e *config.Error) {
	r.found = append(r.found, located{e.File, e.Line, e.Column, e.Error()})
}

func (r *schemaReport) mappingProblem(p mappings.Problem, s *config.Sync) {
	r.found = append(r.found, located{p.File, p.Pos.Line, p.Pos.Col, formatProblem(p, s)})
}

// finish sorts the problems into Problems.
func (r *schemaReport) finish(configFile string) {
	sort.SliceStable(r.found, func(i, j int) bool {
		a, b := r.found[i], r.found[j]
		if (a.file == configFile) != (b.file == configFile) {
			return a.file == configFile
		}
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.col < b.col
	})
	r.Problems = r.Problems[:0]
	for _, l := range r.found {
		r.Problems = append(r.Problems, l.text)
	}
}

// checkSchemas checks every sync's mapping against the schema of its target
// object, as the sync's connector describes it: it starts each connector a
// sync writes to (as the hub does), configures it, describes each sync's
// object and runs mappings.CheckSchema. A connector that cannot be started,
// configured or reached is a problem at the connector's position; an
// object the target does not have is a problem at the sync's.
func checkSchemas(ctx context.Context, cfg *config.Config, maps *compiled, logger *slog.Logger) schemaReport {
	var rep schemaReport
	bySystem := map[string][]*config.Sync{}
	for _, s := range cfg.SyncList() {
		bySystem[s.To] = append(bySystem[s.To], s)
	}
	for _, c := range cfg.ConnectorList() {
		syncs := bySystem[c.Name]
		if len(syncs) == 0 {
			continue
		}
		checkConnector(ctx, c, syncs, maps, logger, &rep)
	}
	file := ""
	for _, c := range cfg.ConnectorList() {
		file = c.Pos.File
	}
	rep.finish(file)
	return rep
}

func checkConnector(ctx context.Context, c *config.Connector, syncs []*config.Sync, maps *compiled, logger *slog.Logger, rep *schemaReport) {
	names := make([]string, len(syncs))
	for i, s := range syncs {
		names[i] = s.Name
	}
	cannot := func(what string, err error) {
		fix := "fix the connector's settings or make the target reachable"
		if c.Type == salesforce.Name {
			fix += " (for the emulator: `loyaltyhub emulator salesforce`)"
		}
		rep.configProblem(&config.Error{Position: c.Pos, Path: "connectors." + c.Name,
			Message: fmt.Sprintf("cannot check the mappings of %s against it: %s: %v; %s, or run validate with --offline",
				plural("sync", names), what, err, fix)})
	}
	conn, err := startConnector(ctx, c, logger)
	if err != nil {
		cannot("starting the connector", err)
		return
	}
	defer conn.Close()
	if err := conn.Configure(ctx, c.Config); err != nil {
		cannot("configuring the connector", err)
		return
	}
	if !conn.Capabilities().DescribeObject {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: connectors.%s: not checked against the target: the connector cannot describe its objects (%s)",
			c.Pos, c.Name, plural("sync", names)))
		return
	}
	described := map[string]connectors.ObjectSchema{}
	for _, s := range syncs {
		m := maps.mappings[s.Name]
		if m == nil {
			continue
		}
		obj, ok := described[s.Object]
		if !ok {
			obj, err = conn.DescribeObject(ctx, s.Object)
			if err != nil {
				if connectors.KindOf(err) == connectors.Permanent && !errors.Is(err, host.ErrClosed) {
					rep.configProblem(&config.Error{Position: s.Pos, Path: "syncs." + s.Name + ".object",
						Message: fmt.Sprintf("%s cannot describe %q: %v", c.Name, s.Object, err)})
					continue
				}
				// Unreachable, login refused, timeouts: the same for every sync.
				cannot("describing "+s.Object, err)
				return
			}
			described[s.Object] = obj
		}
		rep.Checked++
		for _, p := range m.CheckSchema(targetSchema(s, c, obj)) {
			rep.mappingProblem(p, s)
		}
	}
}

// targetSchema converts what a connector describes into what
// mappings.CheckSchema checks. The Salesforce connector leaves create-only
// fields (createable, not updateable: LoyaltyProgramMember.ProgramId) out
// when an upsert updates, so an upsert may map them.
func targetSchema(s *config.Sync, c *config.Connector, obj connectors.ObjectSchema) mappings.TargetSchema {
	ts := mappings.TargetSchema{
		Object:                  s.Object,
		Operation:               string(s.Mode),
		ExternalIDField:         s.ExternalID,
		OmitsCreateOnlyOnUpdate: c.Type == salesforce.Name,
		Fields:                  make([]mappings.TargetField, len(obj.Fields)),
	}
	for i, f := range obj.Fields {
		ts.Fields[i] = mappings.TargetField{
			Name: f.Name, Type: f.Type, Createable: f.Createable, Updateable: f.Updateable,
			Required: f.Required, Nillable: f.Nillable, Length: f.Length,
			Picklist: f.Picklist, ReferenceTo: f.ReferenceTo,
		}
	}
	return ts
}

// formatProblem prints a mapping problem as the config's problems are
// printed: the file relative to the working directory, and for an inline
// mapping the path from the config's root (syncs.NAME.mapping.fields.X);
// a mapping file's problem names the sync it was checked for.
func formatProblem(p mappings.Problem, s *config.Sync) string {
	inline := s.Mapping.Inline() && p.File == s.Mapping.SourceFile
	p.File = displayPath(p.File)
	if inline {
		p.Path = strings.TrimSuffix("syncs."+s.Name+".mapping."+p.Path, ".")
		return p.Error()
	}
	return fmt.Sprintf("%s (sync %s: %s %s)", p.Error(), s.Name, s.To, s.Object)
}

// displayPath shortens an absolute path to one relative to the working
// directory when it lies below it.
func displayPath(path string) string {
	if path == "" || !filepath.IsAbs(path) {
		return path
	}
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

// plural renders "sync a" or "syncs a, b".
func plural(noun string, names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	if len(sorted) == 1 {
		return noun + " " + sorted[0]
	}
	return noun + "s " + strings.Join(sorted, ", ")
}
