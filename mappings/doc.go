// Package mappings is the hub's mapping language: YAML that shapes the data
// of one event into the fields of one target object, without Go.
//
// A mapping is parsed (ParseFile, ParseNode) and compiled (Compile) once, at
// config load; every mistake is reported then as Problems, each naming the
// file, line, column and field, with a suggestion where one exists. A
// compiled *Mapping is safe for concurrent use; Apply maps one record:
//
//	spec, err := mappings.ParseFile("member-to-lpm.yaml")
//	m, err := mappings.Compile(spec, mappings.WithResolver(xref))
//	fields, err := m.Apply(ctx, mappings.Input{ID: id, Subject: key, Time: t, Data: data})
//
// Apply returns ErrFiltered when the mapping's `when` is false, a
// *RecordError when the record cannot be mapped (permanent: dead-letter it),
// and an error wrapping ErrUnresolved, or any other error, when a lookup
// should be retried later.
//
// Per target field: `from` (a gjson path, or an envelope attribute such as
// $event.subject), `value`, `expr` (expr-lang, type-checked at compile time),
// `transform` (a chain of built-ins), `map` (enum translation with an
// optional `fallback`), `lookup` (the cross-reference, or an external-id
// relationship), `default`, `required`, nested `fields` and arrays by
// `each`. README.md in this folder is the reference, with an example for
// every construct.
//
// The package knows no transport: it imports nothing of the pipeline,
// connectors, plugins or config.
package mappings
