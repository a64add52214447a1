package wire

import (
	"context"
	"fmt"

	"github.com/loyaltyhub/loyaltyhub/connectors"
	"github.com/loyaltyhub/loyaltyhub/plugins/internal/pb"
)

// Client is the host side of one plugin connection. Its methods return the
// connector's own errors as *connectors.Error (op names the plugin and the
// method) and transport failures as gRPC status errors, untouched, so the
// caller can tell a dead process from a connector that said no.
type Client struct {
	rpc pb.ConnectorClient
	// Name prefixes the op of every connector error ("plugin geooffers").
	Name string
}

// NewClient wraps a generated client.
func NewClient(rpc pb.ConnectorClient, name string) *Client { return &Client{rpc: rpc, Name: name} }

func (c *Client) op(method string) string { return c.Name + ": " + method }

// Describe calls Describe.
func (c *Client) Describe(ctx context.Context) (connectors.Description, Capabilities, error) {
	resp, err := c.rpc.Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return connectors.Description{}, Capabilities{}, err
	}
	if e := resp.GetError(); e != nil {
		return connectors.Description{}, Capabilities{}, ErrorFromPB(c.op("describe"), e)
	}
	d, caps := DescriptionFromPB(resp)
	return d, caps, nil
}

// Configure calls Configure.
func (c *Client) Configure(ctx context.Context, config []byte) error {
	resp, err := c.rpc.Configure(ctx, &pb.ConfigureRequest{Config: config})
	if err != nil {
		return err
	}
	return ErrorFromPB(c.op("configure"), resp.GetError())
}

// Check calls Check.
func (c *Client) Check(ctx context.Context) error {
	resp, err := c.rpc.Check(ctx, &pb.CheckRequest{})
	if err != nil {
		return err
	}
	return ErrorFromPB(c.op("check"), resp.GetError())
}

// Write sends req (already converted, so that a retry does not convert
// again) and checks that the answer has one valid result per record.
func (c *Client) Write(ctx context.Context, req *pb.WriteRequest) (connectors.WriteResponse, error) {
	resp, err := c.rpc.Write(ctx, req)
	if err != nil {
		return connectors.WriteResponse{}, err
	}
	out := connectors.WriteResponse{Calls: int(resp.GetCalls())}
	if e := resp.GetError(); e != nil {
		return out, ErrorFromPB(c.op("write"), e)
	}
	if len(resp.GetResults()) != len(req.GetRecords()) {
		return out, connectors.E(c.op("write"), connectors.Permanent,
			fmt.Errorf("protocol violation: %d results for %d records", len(resp.GetResults()), len(req.GetRecords())))
	}
	out.Results = make([]connectors.Result, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		out.Results[i] = ResultFromPB(r)
		if out.Results[i].Status == 0 {
			return connectors.WriteResponse{Calls: out.Calls}, connectors.E(c.op("write"), connectors.Permanent,
				fmt.Errorf("protocol violation: result %d (key %q) has status %v, want applied, retryable or permanent",
					i, req.GetRecords()[i].GetKey(), r.GetStatus()))
		}
	}
	return out, nil
}

// Read calls Read.
func (c *Client) Read(ctx context.Context, req connectors.ReadRequest) (connectors.ReadResponse, error) {
	resp, err := c.rpc.Read(ctx, &pb.ReadRequest{Object: req.Object, Cursor: req.Cursor, Limit: int32(req.Limit)})
	if err != nil {
		return connectors.ReadResponse{}, err
	}
	if e := resp.GetError(); e != nil {
		return connectors.ReadResponse{}, ErrorFromPB(c.op("read"), e)
	}
	out := connectors.ReadResponse{Changes: make([]connectors.Change, len(resp.GetChanges())), Cursor: resp.GetCursor(), More: resp.GetMore()}
	for i, ch := range resp.GetChanges() {
		out.Changes[i] = ChangeFromPB(ch)
	}
	return out, nil
}

// DescribeObject calls DescribeObject.
func (c *Client) DescribeObject(ctx context.Context, object string) (connectors.ObjectSchema, error) {
	resp, err := c.rpc.DescribeObject(ctx, &pb.DescribeObjectRequest{Object: object})
	if err != nil {
		return connectors.ObjectSchema{}, err
	}
	if e := resp.GetError(); e != nil {
		return connectors.ObjectSchema{}, ErrorFromPB(c.op("describe object"), e)
	}
	return ObjectSchemaFromPB(resp), nil
}

// GetRecord calls GetRecord. A plugin that cannot read records answers the
// gRPC status UNIMPLEMENTED, returned untouched.
func (c *Client) GetRecord(ctx context.Context, object, externalIDField, key string) (map[string]any, bool, error) {
	resp, err := c.rpc.GetRecord(ctx, &pb.GetRecordRequest{Object: object, ExternalIdField: externalIDField, Key: key})
	if err != nil {
		return nil, false, err
	}
	if e := resp.GetError(); e != nil {
		return nil, false, ErrorFromPB(c.op("get record"), e)
	}
	return FieldsFromPB(resp.GetFields()), resp.GetFound(), nil
}
