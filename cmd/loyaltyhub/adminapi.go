package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/loyaltyhub/loyaltyhub/openapi"
	"github.com/loyaltyhub/loyaltyhub/pipeline"
	"github.com/loyaltyhub/loyaltyhub/pipeline/store"
)

// This file holds the adminAPI methods over the dead-letter queue and the
// audit log, and the admin API's access (app.go has the others).

// AdminAccess is the admin API's tokens and roles (http.admin_tokens, and
// http.admin_token as an operator named "admin") and what the read role sees
// redacted (http.redact_fields).
func (x adminAPI) AdminAccess() openapi.AdminAccess {
	h := x.a.cfg.HTTP
	acc := openapi.AdminAccess{RedactFields: h.RedactFields}
	for _, t := range h.Tokens() {
		acc.Tokens = append(acc.Tokens, openapi.AdminToken{Name: t.Name, Role: openapi.Role(t.Role), Token: t.Token.Value()})
	}
	return acc
}

// foldKey gives a filter's key as the store keeps it (see
// pipeline.Hub.FoldKeyFilter); an ambiguous one is the client's to fix.
func (x adminAPI) foldKey(f store.DeadLetterFilter) (store.DeadLetterFilter, error) {
	f, err := x.a.hub.FoldKeyFilter(f)
	if errors.Is(err, pipeline.ErrAmbiguousKey) {
		return f, fmt.Errorf("key filter %q: %w", f.Key, errors.Join(err, store.ErrInvalid))
	}
	return f, err
}

func (x adminAPI) DeadLetters(ctx context.Context, f store.DeadLetterFilter, afterID int64, limit int) ([]store.DeadLetter, error) {
	f, err := x.foldKey(f)
	if err != nil {
		return nil, err
	}
	dls, err := x.a.store.QueryDeadLetters(ctx, f, afterID, limit)
	for i := range dls {
		dls[i].Key = x.a.hub.EventKey(dls[i].Sync, dls[i].Key, dls[i].Event)
	}
	return dls, err
}

func (x adminAPI) SummarizeDeadLetters(ctx context.Context, f store.DeadLetterFilter) ([]store.DeadLetterGroup, error) {
	f, err := x.foldKey(f)
	if err != nil {
		return nil, err
	}
	return x.a.store.SummarizeDeadLetters(ctx, f)
}

func (x adminAPI) DiscardDeadLetters(ctx context.Context, sel store.Selection, by store.Operator) (store.Discarded, error) {
	var err error
	if sel.Filter, err = x.foldKey(sel.Filter); err != nil {
		return store.Discarded{}, err
	}
	return x.a.store.DiscardDeadLetters(ctx, sel, by)
}

func (x adminAPI) Replay(ctx context.Context, id int64, by store.Operator) (store.DeadLetter, error) {
	return x.a.hub.Replay(ctx, x.a.store, x.a.bus.Publisher(), id, by)
}

func (x adminAPI) ResetKey(ctx context.Context, sync, key string, by store.Operator) (store.KeyReset, error) {
	r, err := x.a.hub.ResetKey(ctx, x.a.store, sync, key, by)
	if errors.Is(err, pipeline.ErrUnknownSync) {
		return r, fmt.Errorf("no sync %q; the syncs: %s: %w", sync, strings.Join(syncNames(x.a.cfg), ", "), openapi.ErrNotFound)
	}
	return r, err
}

func (x adminAPI) AuditLog(ctx context.Context, afterID int64, limit int) ([]store.AuditEntry, error) {
	return x.a.store.AuditLog(ctx, afterID, limit)
}
