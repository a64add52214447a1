package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/pb"
)

// Capabilities say which optional interfaces a connector implements.
type Capabilities struct {
	Write          bool
	Read           bool
	DescribeObject bool
	// GetRecord: the connector reads single records (RecordGetter).
	GetRecord bool
	// SDK names the SDK that serves the plugin ("loyaltyhub-go-sdk/1"), as
	// the plugin reports it.
	SDK string
}

// CapabilitiesOf finds the optional interfaces c implements.
func CapabilitiesOf(c connectors.Connector) Capabilities {
	_, w := c.(connectors.Writer)
	_, r := c.(connectors.Reader)
	_, d := c.(connectors.SchemaDescriber)
	_, g := c.(connectors.RecordGetter)
	return Capabilities{Write: w, Read: r, DescribeObject: d, GetRecord: g, SDK: SDKName}
}

// SDKName is what Go plugins report in DescribeResponse.sdk.
const SDKName = "loyaltyhub-go-sdk/1"

// server is the plugin side: it serves the gRPC service by calling the
// connector. It guards the contract for the vendor (one result per record,
// a config that is a JSON object) and turns a panic into an error.
type server struct {
	pb.UnimplementedConnectorServer
	impl connectors.Connector
	log  *slog.Logger
}

func (s *server) recover(method string, errp *error) {
	if r := recover(); r != nil {
		s.log.Error("connector panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*errp = fmt.Errorf("%s: connector panicked: %v", method, r)
	}
}

func (s *server) Describe(ctx context.Context, _ *pb.DescribeRequest) (resp *pb.DescribeResponse, err error) {
	defer s.recover("Describe", &err)
	d, derr := s.impl.Describe(ctx)
	if derr != nil {
		return &pb.DescribeResponse{Error: ErrorToPB(derr)}, nil
	}
	return DescriptionToPB(d, CapabilitiesOf(s.impl), SDKName), nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (resp *pb.ConfigureResponse, err error) {
	defer s.recover("Configure", &err)
	var obj map[string]json.RawMessage
	if jerr := json.Unmarshal(req.GetConfig(), &obj); jerr != nil || obj == nil {
		why := "it is null"
		if jerr != nil {
			why = jerr.Error()
		}
		return &pb.ConfigureResponse{Error: ErrorToPB(connectors.E("configure", connectors.Permanent,
			fmt.Errorf("config must be a JSON object: %s", why)))}, nil
	}
	return &pb.ConfigureResponse{Error: ErrorToPB(s.impl.Configure(ctx, req.GetConfig()))}, nil
}

func (s *server) Check(ctx context.Context, _ *pb.CheckRequest) (resp *pb.CheckResponse, err error) {
	defer s.recover("Check", &err)
	return &pb.CheckResponse{Error: ErrorToPB(s.impl.Check(ctx))}, nil
}

var errNotSupported = errors.New("not supported by this connector")

func (s *server) Write(ctx context.Context, req *pb.WriteRequest) (resp *pb.WriteResponse, err error) {
	defer s.recover("Write", &err)
	w, ok := s.impl.(connectors.Writer)
	if !ok {
		return &pb.WriteResponse{Error: ErrorToPB(connectors.E("write", connectors.Permanent, errNotSupported))}, nil
	}
	in := WriteRequestFromPB(req)
	if !in.Operation.Valid() {
		return &pb.WriteResponse{Error: ErrorToPB(connectors.E("write", connectors.Permanent,
			fmt.Errorf("operation %v is not one of upsert, insert, update, delete", req.GetOperation())))}, nil
	}
	out, werr := w.Write(ctx, in)
	if werr != nil {
		return &pb.WriteResponse{Error: ErrorToPB(werr), Calls: int32(out.Calls)}, nil
	}
	if len(out.Results) != len(in.Records) {
		return &pb.WriteResponse{Error: ErrorToPB(connectors.E("write", connectors.Other,
			fmt.Errorf("connector bug: %d results for %d records", len(out.Results), len(in.Records))))}, nil
	}
	resp = &pb.WriteResponse{Results: make([]*pb.Result, len(out.Results)), Calls: int32(out.Calls)}
	for i, r := range out.Results {
		resp.Results[i] = ResultToPB(r)
	}
	return resp, nil
}

func (s *server) Read(ctx context.Context, req *pb.ReadRequest) (resp *pb.ReadResponse, err error) {
	defer s.recover("Read", &err)
	r, ok := s.impl.(connectors.Reader)
	if !ok {
		return &pb.ReadResponse{Error: ErrorToPB(connectors.E("read", connectors.Permanent, errNotSupported))}, nil
	}
	out, rerr := r.Read(ctx, connectors.ReadRequest{Object: req.GetObject(), Cursor: req.GetCursor(), Limit: int(req.GetLimit())})
	if rerr != nil {
		return &pb.ReadResponse{Error: ErrorToPB(rerr)}, nil
	}
	resp = &pb.ReadResponse{Changes: make([]*pb.Change, len(out.Changes)), Cursor: out.Cursor, More: out.More}
	for i, c := range out.Changes {
		resp.Changes[i] = ChangeToPB(c)
	}
	return resp, nil
}

func (s *server) DescribeObject(ctx context.Context, req *pb.DescribeObjectRequest) (resp *pb.DescribeObjectResponse, err error) {
	defer s.recover("DescribeObject", &err)
	d, ok := s.impl.(connectors.SchemaDescriber)
	if !ok {
		return &pb.DescribeObjectResponse{Error: ErrorToPB(connectors.E("describe object", connectors.Permanent, errNotSupported))}, nil
	}
	out, derr := d.DescribeObject(ctx, req.GetObject())
	if derr != nil {
		return &pb.DescribeObjectResponse{Error: ErrorToPB(derr)}, nil
	}
	return ObjectSchemaToPB(out), nil
}

// GetRecord answers UNIMPLEMENTED when the connector is no RecordGetter, as
// a plugin built before the RPC existed does, so the host treats both alike.
func (s *server) GetRecord(ctx context.Context, req *pb.GetRecordRequest) (resp *pb.GetRecordResponse, err error) {
	defer s.recover("GetRecord", &err)
	g, ok := s.impl.(connectors.RecordGetter)
	if !ok {
		return nil, status.Error(codes.Unimplemented, connectors.ErrCannotReadRecords.Error())
	}
	fields, found, gerr := g.GetRecord(ctx, req.GetObject(), req.GetExternalIdField(), req.GetKey())
	if gerr != nil {
		return &pb.GetRecordResponse{Error: ErrorToPB(gerr)}, nil
	}
	pf, cerr := FieldsToPB(fields)
	if cerr != nil {
		return &pb.GetRecordResponse{Error: ErrorToPB(connectors.E("get record", connectors.Permanent, cerr))}, nil
	}
	return &pb.GetRecordResponse{Found: found, Fields: pf}, nil
}
