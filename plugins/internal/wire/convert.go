package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/pb"
)

// ErrorToPB turns a connector error into its wire form, keeping its Kind and
// RetryAfter. A nil error gives nil.
func ErrorToPB(err error) *pb.Error {
	if err == nil {
		return nil
	}
	return &pb.Error{
		Kind:       kindToPB(connectors.KindOf(err)),
		Message:    err.Error(),
		RetryAfter: durationToPB(connectors.RetryAfterOf(err)),
	}
}

// ErrorFromPB rebuilds a *connectors.Error from its wire form, with op as its
// operation. A nil message gives nil.
func ErrorFromPB(op string, e *pb.Error) error {
	if e == nil {
		return nil
	}
	msg := e.GetMessage()
	if msg == "" {
		msg = "connector error without a message"
	}
	return &connectors.Error{
		Op:         op,
		Kind:       kindFromPB(e.GetKind()),
		RetryAfter: durationFromPB(e.GetRetryAfter()),
		Err:        errors.New(msg),
	}
}

func kindToPB(k connectors.Kind) pb.Kind {
	switch k {
	case connectors.Transient:
		return pb.Kind_KIND_TRANSIENT
	case connectors.Permanent:
		return pb.Kind_KIND_PERMANENT
	case connectors.Auth:
		return pb.Kind_KIND_AUTH
	}
	return pb.Kind_KIND_OTHER
}

func kindFromPB(k pb.Kind) connectors.Kind {
	switch k {
	case pb.Kind_KIND_TRANSIENT:
		return connectors.Transient
	case pb.Kind_KIND_PERMANENT:
		return connectors.Permanent
	case pb.Kind_KIND_AUTH:
		return connectors.Auth
	}
	return connectors.Other
}

func durationToPB(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

func durationFromPB(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

// OperationToPB converts an operation; an invalid one gives UNSPECIFIED.
func OperationToPB(op connectors.Operation) pb.Operation {
	switch op {
	case connectors.Upsert:
		return pb.Operation_OPERATION_UPSERT
	case connectors.Insert:
		return pb.Operation_OPERATION_INSERT
	case connectors.Update:
		return pb.Operation_OPERATION_UPDATE
	case connectors.Delete:
		return pb.Operation_OPERATION_DELETE
	}
	return pb.Operation_OPERATION_UNSPECIFIED
}

// OperationFromPB converts an operation; UNSPECIFIED gives "".
func OperationFromPB(op pb.Operation) connectors.Operation {
	switch op {
	case pb.Operation_OPERATION_UPSERT:
		return connectors.Upsert
	case pb.Operation_OPERATION_INSERT:
		return connectors.Insert
	case pb.Operation_OPERATION_UPDATE:
		return connectors.Update
	case pb.Operation_OPERATION_DELETE:
		return connectors.Delete
	}
	return ""
}

// ValueToPB converts one JSON-compatible field value. int64 and float64 keep
// their types; other Go values are carried as their JSON encoding would be.
func ValueToPB(v any) (*pb.Value, error) {
	switch v := v.(type) {
	case nil:
		return &pb.Value{Kind: &pb.Value_NullValue{NullValue: true}}, nil
	case bool:
		return &pb.Value{Kind: &pb.Value_BoolValue{BoolValue: v}}, nil
	case string:
		return &pb.Value{Kind: &pb.Value_StringValue{StringValue: v}}, nil
	case int64:
		return intValue(v), nil
	case int:
		return intValue(int64(v)), nil
	case int32:
		return intValue(int64(v)), nil
	case int16:
		return intValue(int64(v)), nil
	case int8:
		return intValue(int64(v)), nil
	case uint32:
		return intValue(int64(v)), nil
	case uint16:
		return intValue(int64(v)), nil
	case uint8:
		return intValue(int64(v)), nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d is larger than int64", v)
		}
		return intValue(int64(v)), nil
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d is larger than int64", v)
		}
		return intValue(int64(v)), nil
	case float64:
		return &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: v}}, nil
	case float32:
		return &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: float64(v)}}, nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return intValue(i), nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", v, err)
		}
		return &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: f}}, nil
	case []any:
		list := &pb.ListValue{Values: make([]*pb.Value, len(v))}
		for i, e := range v {
			pv, err := ValueToPB(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			list.Values[i] = pv
		}
		return &pb.Value{Kind: &pb.Value_ListValue{ListValue: list}}, nil
	case map[string]any:
		m, err := FieldsToPB(v)
		if err != nil {
			return nil, err
		}
		return &pb.Value{Kind: &pb.Value_MapValue{MapValue: &pb.MapValue{Fields: m}}}, nil
	}
	// Anything else (time.Time, []string, structs) goes as its JSON form.
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("value of type %T is not JSON-compatible: %w", v, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, fmt.Errorf("value of type %T: %w", v, err)
	}
	return ValueToPB(generic)
}

func intValue(i int64) *pb.Value {
	return &pb.Value{Kind: &pb.Value_IntValue{IntValue: i}}
}

// ValueFromPB converts a wire value back: nil, bool, int64, float64, string,
// []any or map[string]any.
func ValueFromPB(v *pb.Value) any {
	switch k := v.GetKind().(type) {
	case *pb.Value_BoolValue:
		return k.BoolValue
	case *pb.Value_IntValue:
		return k.IntValue
	case *pb.Value_DoubleValue:
		return k.DoubleValue
	case *pb.Value_StringValue:
		return k.StringValue
	case *pb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = ValueFromPB(e)
		}
		return out
	case *pb.Value_MapValue:
		out := FieldsFromPB(k.MapValue.GetFields())
		if out == nil {
			out = map[string]any{}
		}
		return out
	}
	return nil
}

// FieldsToPB converts a record's fields; the error names the field at fault.
func FieldsToPB(fields map[string]any) (map[string]*pb.Value, error) {
	if fields == nil {
		return nil, nil
	}
	out := make(map[string]*pb.Value, len(fields))
	for name, v := range fields {
		pv, err := ValueToPB(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", name, err)
		}
		out[name] = pv
	}
	return out, nil
}

// FieldsFromPB converts a record's fields back; none gives nil.
func FieldsFromPB(fields map[string]*pb.Value) map[string]any {
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]any, len(fields))
	for name, v := range fields {
		out[name] = ValueFromPB(v)
	}
	return out
}

// WriteRequestToPB converts a batch; the error names the record and field
// whose value cannot be carried.
func WriteRequestToPB(req connectors.WriteRequest) (*pb.WriteRequest, error) {
	out := &pb.WriteRequest{
		Object:          req.Object,
		Operation:       OperationToPB(req.Operation),
		ExternalIdField: req.ExternalIDField,
		Records:         make([]*pb.Record, len(req.Records)),
	}
	for i, r := range req.Records {
		f, err := FieldsToPB(r.Fields)
		if err != nil {
			return nil, fmt.Errorf("record %d (key %q): %w", i, r.Key, err)
		}
		out.Records[i] = &pb.Record{Key: r.Key, TargetId: r.TargetID, Fields: f}
	}
	return out, nil
}

// WriteRequestFromPB converts a batch back.
func WriteRequestFromPB(req *pb.WriteRequest) connectors.WriteRequest {
	out := connectors.WriteRequest{
		Object:          req.GetObject(),
		Operation:       OperationFromPB(req.GetOperation()),
		ExternalIDField: req.GetExternalIdField(),
		Records:         make([]connectors.Record, len(req.GetRecords())),
	}
	for i, r := range req.GetRecords() {
		out.Records[i] = connectors.Record{Key: r.GetKey(), TargetID: r.GetTargetId(), Fields: FieldsFromPB(r.GetFields())}
	}
	return out
}

// ResultToPB converts one record's result.
func ResultToPB(r connectors.Result) *pb.Result {
	return &pb.Result{
		Status:     pb.Status(r.Status),
		TargetId:   r.TargetID,
		Code:       r.Code,
		Message:    r.Message,
		RetryAfter: durationToPB(r.RetryAfter),
	}
}

// ResultFromPB converts one record's result back. A status outside the
// three known ones gives 0, which callers treat as a protocol violation.
func ResultFromPB(r *pb.Result) connectors.Result {
	st := connectors.Status(r.GetStatus())
	switch st {
	case connectors.StatusApplied, connectors.StatusRetryable, connectors.StatusPermanent:
	default:
		st = 0
	}
	return connectors.Result{
		Status:     st,
		TargetID:   r.GetTargetId(),
		Code:       r.GetCode(),
		Message:    r.GetMessage(),
		RetryAfter: durationFromPB(r.GetRetryAfter()),
	}
}

// DescriptionToPB converts a description with the capabilities found on the
// connector.
func DescriptionToPB(d connectors.Description, caps Capabilities, sdk string) *pb.DescribeResponse {
	return &pb.DescribeResponse{
		Name:         d.Name,
		Version:      d.Version,
		Summary:      d.Summary,
		MaxBatch:     int32(min(d.MaxBatch, math.MaxInt32)),
		Objects:      d.Objects,
		Writes:       d.Writes,
		Reads:        d.Reads,
		Entities:     d.Entities,
		Keys:         string(d.Keys),
		ConfigSchema: d.ConfigSchema,
		Capabilities: &pb.Capabilities{Write: caps.Write, Read: caps.Read, DescribeObject: caps.DescribeObject, GetRecord: caps.GetRecord},
		Sdk:          sdk,
	}
}

// DescriptionFromPB converts a description back.
func DescriptionFromPB(d *pb.DescribeResponse) (connectors.Description, Capabilities) {
	desc := connectors.Description{
		Name:     d.GetName(),
		Version:  d.GetVersion(),
		Summary:  d.GetSummary(),
		MaxBatch: int(d.GetMaxBatch()),
		Objects:  d.GetObjects(),
		Writes:   d.GetWrites(),
		Reads:    d.GetReads(),
		Entities: d.GetEntities(),
		Keys:     connectors.KeyMatch(d.GetKeys()),
	}
	if len(d.GetConfigSchema()) > 0 {
		desc.ConfigSchema = json.RawMessage(d.GetConfigSchema())
	}
	c := d.GetCapabilities()
	return desc, Capabilities{Write: c.GetWrite(), Read: c.GetRead(), DescribeObject: c.GetDescribeObject(), GetRecord: c.GetGetRecord(), SDK: d.GetSdk()}
}

// ChangeToPB converts one change.
func ChangeToPB(c connectors.Change) *pb.Change {
	out := &pb.Change{Id: c.ID, Type: c.Type, Subject: c.Subject, Version: c.Version, Data: c.Data}
	if !c.Time.IsZero() {
		out.Time = timestamppb.New(c.Time)
	}
	return out
}

// ChangeFromPB converts one change back (times come back in UTC).
func ChangeFromPB(c *pb.Change) connectors.Change {
	out := connectors.Change{ID: c.GetId(), Type: c.GetType(), Subject: c.GetSubject(), Version: c.GetVersion()}
	if c.GetTime() != nil {
		out.Time = c.GetTime().AsTime()
	}
	if len(c.GetData()) > 0 {
		out.Data = json.RawMessage(c.GetData())
	}
	return out
}

// ObjectSchemaToPB converts an object schema.
func ObjectSchemaToPB(s connectors.ObjectSchema) *pb.DescribeObjectResponse {
	out := &pb.DescribeObjectResponse{Name: s.Name, Fields: make([]*pb.FieldSchema, len(s.Fields))}
	for i, f := range s.Fields {
		out.Fields[i] = &pb.FieldSchema{
			Name: f.Name, Label: f.Label, Type: f.Type, Length: int32(min(f.Length, math.MaxInt32)),
			Createable: f.Createable, Updateable: f.Updateable, Nillable: f.Nillable, Required: f.Required,
			ExternalId: f.ExternalID, Unique: f.Unique, Picklist: f.Picklist, ReferenceTo: f.ReferenceTo,
		}
	}
	return out
}

// ObjectSchemaFromPB converts an object schema back.
func ObjectSchemaFromPB(s *pb.DescribeObjectResponse) connectors.ObjectSchema {
	out := connectors.ObjectSchema{Name: s.GetName(), Fields: make([]connectors.FieldSchema, len(s.GetFields()))}
	for i, f := range s.GetFields() {
		out.Fields[i] = connectors.FieldSchema{
			Name: f.GetName(), Label: f.GetLabel(), Type: f.GetType(), Length: int(f.GetLength()),
			Createable: f.GetCreateable(), Updateable: f.GetUpdateable(), Nillable: f.GetNillable(), Required: f.GetRequired(),
			ExternalID: f.GetExternalId(), Unique: f.GetUnique(), Picklist: f.GetPicklist(), ReferenceTo: f.GetReferenceTo(),
		}
	}
	return out
}
