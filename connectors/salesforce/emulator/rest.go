package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type route struct {
	kind    string
	handler func(c *call) *response
}

func notFoundRoute(msg string) route {
	return route{kind: "not_found", handler: func(*call) *response {
		e := *errNotFound
		if msg != "" {
			e.Message = msg
		}
		return errResp(http.StatusNotFound, &e)
	}}
}

func methodNotAllowed(method string, allowed ...string) route {
	return route{kind: "not_found", handler: func(*call) *response {
		resp := errResp(http.StatusMethodNotAllowed, newErr("METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are %s", method, strings.Join(allowed, ",")))
		resp.header = map[string]string{"Allow": strings.Join(allowed, ", ")}
		return resp
	}}
}

// byMethod picks the route for method among the handlers, or a 405.
func byMethod(method string, routes map[string]route) route {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if rt, ok := routes[method]; ok {
		return rt
	}
	allowed := make([]string, 0, len(routes))
	for m := range routes {
		allowed = append(allowed, m)
	}
	slices.Sort(allowed)
	return methodNotAllowed(method, allowed...)
}

// route maps a REST path (the segments after /services/data/vXX.X) to its handler.
func (s *Server) route(method string, segs []string) route {
	if len(segs) == 0 {
		return byMethod(method, map[string]route{"GET": {"resources", s.handleResources}})
	}
	switch segs[0] {
	case "limits":
		if len(segs) == 1 {
			return byMethod(method, map[string]route{"GET": {"limits", s.handleLimits}})
		}
	case "sobjects":
		return s.routeSObjects(method, segs[1:])
	case "query", "queryAll":
		all := segs[0] == "queryAll"
		if len(segs) == 1 {
			return byMethod(method, map[string]route{"GET": {"query", func(c *call) *response { return s.handleQuery(c, all) }}})
		}
		if len(segs) == 2 {
			return byMethod(method, map[string]route{"GET": {"queryMore", func(c *call) *response { return s.handleQueryMore(c, segs[1]) }}})
		}
	case "composite":
		return s.routeComposite(method, segs[1:])
	case "jobs":
		return s.routeJobs(method, segs[1:])
	}
	return notFoundRoute("")
}

func (s *Server) routeSObjects(method string, rest []string) route {
	if len(rest) == 0 {
		return byMethod(method, map[string]route{"GET": {"describeGlobal", s.handleDescribeGlobal}})
	}
	obj := s.schema.object(rest[0])
	if obj == nil {
		return route{kind: "not_found", handler: func(*call) *response {
			return errResp(http.StatusNotFound, newErr("NOT_FOUND", "The requested resource does not exist"))
		}}
	}
	switch len(rest) {
	case 1:
		return byMethod(method, map[string]route{
			"GET":  {"sobject.info", func(c *call) *response { return s.handleSObjectInfo(c, obj) }},
			"POST": {"sobject.create", func(c *call) *response { return s.handleCreate(c, obj) }},
		})
	case 2:
		if rest[1] == "describe" {
			return byMethod(method, map[string]route{"GET": {"describe", func(c *call) *response { return s.handleDescribe(c, obj) }}})
		}
		if f := obj.field(rest[1]); f != nil {
			if f.Name == "Id" {
				// POST /sobjects/{Obj}/Id creates (API 37.0+); PATCH with no value is rejected
				return byMethod(method, map[string]route{
					"POST": {"sobject.upsert", func(c *call) *response { return s.handleUpsert(c, obj, f, "") }},
				})
			}
			return notFoundRoute("")
		}
		id := rest[1]
		return byMethod(method, map[string]route{
			"GET":    {"sobject.get", func(c *call) *response { return s.handleGet(c, obj, id) }},
			"PATCH":  {"sobject.update", func(c *call) *response { return s.handleUpdate(c, obj, id) }},
			"DELETE": {"sobject.delete", func(c *call) *response { return s.handleDelete(c, obj, id) }},
		})
	case 3:
		f := obj.field(rest[1])
		if f == nil {
			if _, ok := normalizeID(rest[1]); ok {
				return notFoundRoute("") // relationship traversal is not emulated
			}
			return route{kind: "sobject.upsert", handler: func(*call) *response {
				return errResp(http.StatusNotFound, newErr("NOT_FOUND", "Provided external ID field does not exist or is not accessible: %s", rest[1]))
			}}
		}
		value := rest[2]
		return byMethod(method, map[string]route{
			"GET":    {"sobject.get", func(c *call) *response { return s.handleGetByExternalID(c, obj, f, value) }},
			"PATCH":  {"sobject.upsert", func(c *call) *response { return s.handleUpsert(c, obj, f, value) }},
			"POST":   {"sobject.upsert", func(c *call) *response { return s.handleUpsert(c, obj, f, value) }},
			"DELETE": {"sobject.delete", func(c *call) *response { return s.handleDeleteByExternalID(c, obj, f, value) }},
		})
	}
	return notFoundRoute("")
}

func (s *Server) routeComposite(method string, rest []string) route {
	if len(rest) == 0 {
		return byMethod(method, map[string]route{
			"GET":  {"resources", s.handleCompositeList},
			"POST": {"composite", s.handleComposite},
		})
	}
	if rest[0] != "sobjects" {
		return notFoundRoute("")
	}
	switch len(rest) {
	case 1:
		return byMethod(method, map[string]route{
			"POST":   {"collections.create", s.handleCollectionCreate},
			"PATCH":  {"collections.update", s.handleCollectionUpdate},
			"DELETE": {"collections.delete", s.handleCollectionDelete},
		})
	case 2:
		return byMethod(method, map[string]route{
			"GET": {"collections.get", func(c *call) *response { return s.handleCollectionGet(c, rest[1]) }},
		})
	case 3:
		return byMethod(method, map[string]route{
			"PATCH": {"collections.upsert", func(c *call) *response { return s.handleCollectionUpsert(c, rest[1], rest[2]) }},
		})
	}
	return notFoundRoute("")
}

// versionLabel names the release of an API version ("63.0" → "Spring '25").
func versionLabel(v int) string {
	k := v - 63
	season := ((k % 3) + 3) % 3
	year := 25 + floorDiv(k, 3)
	names := []string{"Spring", "Summer", "Winter"}
	if season == 2 {
		year++
	}
	return fmt.Sprintf("%s '%02d", names[season], year)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// handleVersions is GET /services/data/: the versions list, which needs no session and
// carries no Sforce-Limit-Info.
func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.write(w, r, methodNotAllowed(r.Method, "GET", "HEAD").handler(nil), false)
		return
	}
	s.countCall("versions")
	var out []map[string]string
	for v := minAPIVersion; v <= s.cfg.apiVersionNumber(); v++ {
		out = append(out, map[string]string{"label": versionLabel(v), "url": "/services/data/v" + strconv.Itoa(v) + ".0", "version": strconv.Itoa(v) + ".0"})
	}
	s.write(w, r, jsonResp(http.StatusOK, out), false)
}

func (c *call) base() string { return "/services/data/v" + c.version }

func (s *Server) handleResources(c *call) *response {
	b := c.base()
	return jsonResp(http.StatusOK, orderedOf(
		"tooling", b+"/tooling",
		"metadata", b+"/metadata",
		"eclair", b+"/eclair",
		"jobs", b+"/jobs",
		"query", b+"/query",
		"queryAll", b+"/queryAll",
		"sobjects", b+"/sobjects",
		"composite", b+"/composite",
		"limits", b+"/limits",
		"connect", b+"/connect",
		"search", b+"/search",
		"recent", b+"/recent",
	))
}

func (s *Server) handleCompositeList(c *call) *response {
	b := c.base()
	return jsonResp(http.StatusOK, orderedOf(
		"tree", b+"/composite/tree",
		"batch", b+"/composite/batch",
		"sobjects", b+"/composite/sobjects",
		"graph", b+"/composite/graph",
	))
}

func (s *Server) handleLimits(c *call) *response {
	used, limit := s.apiUsage()
	mr := func(max, remaining int) map[string]int { return map[string]int{"Max": max, "Remaining": remaining} }
	records := 0
	s.withRead(c, func() {
		for _, t := range s.st.tables {
			records += len(t.recs)
		}
	})
	dataMB := records * 2 / 1024
	return jsonResp(http.StatusOK, orderedOf(
		"ConcurrentAsyncGetReportInstances", mr(200, 200),
		"ConcurrentSyncReportRuns", mr(20, 20),
		"DailyApiRequests", mr(limit, max(limit-used, 0)),
		"DailyAsyncApexExecutions", mr(250000, 250000),
		"DailyBulkApiBatches", mr(bulkBatchAllocation, max(bulkBatchAllocation-s.bulkBatchesUsed(), 0)),
		"DailyBulkV2QueryFileStorageMB", mr(976562, 976562),
		"DailyBulkV2QueryJobs", mr(10000, 10000),
		"DailyStreamingApiEvents", mr(1000000, 1000000),
		"DataStorageMB", mr(1024, 1024-dataMB),
		"FileStorageMB", mr(1024, 1024),
		"SingleEmail", mr(5000, 5000),
	))
}

func sobjectURLs(base string, o *objectDef) map[string]string {
	u := base + "/sobjects/" + o.Name
	return map[string]string{"sobject": u, "describe": u + "/describe", "rowTemplate": u + "/{ID}"}
}

func (s *Server) globalEntry(base string, o *objectDef) *ordered {
	return orderedOf(
		"activateable", false,
		"associateEntityType", nil,
		"associateParentEntity", nil,
		"createable", true,
		"custom", o.Custom,
		"customSetting", false,
		"deepCloneable", false,
		"deletable", true,
		"deprecatedAndHidden", false,
		"feedEnabled", false,
		"hasSubtypes", false,
		"isInterface", false,
		"isSubtype", false,
		"keyPrefix", o.KeyPrefix,
		"label", o.Label,
		"labelPlural", o.LabelPlural,
		"layoutable", true,
		"mergeable", o.Name == "Account" || o.Name == "Contact",
		"mruEnabled", true,
		"name", o.Name,
		"queryable", true,
		"replicateable", true,
		"retrieveable", true,
		"searchable", true,
		"triggerable", true,
		"undeletable", true,
		"updateable", true,
		"urls", sobjectURLs(base, o),
	)
}

func (s *Server) handleDescribeGlobal(c *call) *response {
	list := make([]*ordered, 0, len(s.schema.objects))
	for _, o := range s.schema.objects {
		list = append(list, s.globalEntry(c.base(), o))
	}
	return jsonResp(http.StatusOK, orderedOf("encoding", "UTF-8", "maxBatchSize", 200, "sobjects", list))
}

func (s *Server) handleSObjectInfo(c *call, o *objectDef) *response {
	return jsonResp(http.StatusOK, orderedOf("objectDescribe", s.globalEntry(c.base(), o), "recentItems", []any{}))
}

// fieldDescribe is one element of describe's "fields", in Salesforce's key order.
type fieldDescribe struct {
	Aggregatable       bool            `json:"aggregatable"`
	AutoNumber         bool            `json:"autoNumber"`
	ByteLength         int             `json:"byteLength"`
	Calculated         bool            `json:"calculated"`
	CaseSensitive      bool            `json:"caseSensitive"`
	Createable         bool            `json:"createable"`
	Custom             bool            `json:"custom"`
	DefaultValue       any             `json:"defaultValue"`
	DefaultedOnCreate  bool            `json:"defaultedOnCreate"`
	DependentPicklist  bool            `json:"dependentPicklist"`
	Digits             int             `json:"digits"`
	ExternalID         bool            `json:"externalId"`
	Filterable         bool            `json:"filterable"`
	Groupable          bool            `json:"groupable"`
	HTMLFormatted      bool            `json:"htmlFormatted"`
	IDLookup           bool            `json:"idLookup"`
	InlineHelpText     *string         `json:"inlineHelpText"`
	Label              string          `json:"label"`
	Length             int             `json:"length"`
	Name               string          `json:"name"`
	NameField          bool            `json:"nameField"`
	Nillable           bool            `json:"nillable"`
	PicklistValues     []picklistValue `json:"picklistValues"`
	Precision          int             `json:"precision"`
	ReferenceTo        []string        `json:"referenceTo"`
	RelationshipName   *string         `json:"relationshipName"`
	RestrictedPicklist bool            `json:"restrictedPicklist"`
	Scale              int             `json:"scale"`
	SoapType           string          `json:"soapType"`
	Sortable           bool            `json:"sortable"`
	Type               string          `json:"type"`
	Unique             bool            `json:"unique"`
	Updateable         bool            `json:"updateable"`
}

func describeField(f *fieldDef) fieldDescribe {
	d := fieldDescribe{
		Aggregatable: f.Type != tTextarea && f.Type != tMultipicklist, AutoNumber: f.AutoNumber,
		ByteLength: f.Length * 3, Calculated: f.Calculated, CaseSensitive: f.CaseSensitive,
		Createable: f.Createable, Custom: f.Custom, DefaultedOnCreate: f.DefaultedOnCreate,
		Digits: f.Digits, ExternalID: f.ExternalID, Filterable: f.Filterable, Groupable: f.Groupable,
		IDLookup: f.IDLookup, Label: f.Label, Length: f.Length, Name: f.Name, NameField: f.NameField,
		Nillable: f.Nillable, PicklistValues: f.Picklist, Precision: f.Precision,
		ReferenceTo: f.ReferenceTo, RestrictedPicklist: f.Restricted, Scale: f.Scale,
		SoapType: f.Type.soapType(), Sortable: f.Sortable, Type: string(f.Type), Unique: f.Unique,
		Updateable: f.Updateable,
	}
	if !f.Type.isText() || f.Type == tReference || f.Type == tID {
		if f.Type != tReference && f.Type != tID {
			d.ByteLength, d.Length = 0, 0
		}
	}
	if f.Type != tInt {
		d.Digits = 0
	}
	if f.Type == tBoolean || (f.Type != tPicklist && f.DefaultValue != nil) {
		d.DefaultValue = f.DefaultValue
	}
	if d.PicklistValues == nil {
		d.PicklistValues = []picklistValue{}
	}
	if d.ReferenceTo == nil {
		d.ReferenceTo = []string{}
	}
	if f.RelationshipName != "" {
		rn := f.RelationshipName
		d.RelationshipName = &rn
	}
	return d
}

func (s *Server) handleDescribe(c *call, o *objectDef) *response {
	fields := make([]fieldDescribe, len(o.Fields))
	for i, f := range o.Fields {
		fields[i] = describeField(f)
	}
	children := make([]*ordered, 0, len(o.children))
	for _, ch := range o.children {
		children = append(children, orderedOf("cascadeDelete", false, "childSObject", ch.object, "deprecatedAndHidden", false,
			"field", ch.field, "relationshipName", nil, "restrictedDelete", false))
	}
	urls := sobjectURLs(c.base(), o)
	body := orderedOf(
		"actionOverrides", []any{},
		"activateable", false,
		"childRelationships", children,
		"compactLayoutable", true,
		"createable", true,
		"custom", o.Custom,
		"customSetting", false,
		"deletable", true,
		"deprecatedAndHidden", false,
		"feedEnabled", false,
		"fields", fields,
		"hasSubtypes", false,
		"isSubtype", false,
		"keyPrefix", o.KeyPrefix,
		"label", o.Label,
		"labelPlural", o.LabelPlural,
		"layoutable", true,
		"mergeable", o.Name == "Account" || o.Name == "Contact",
		"mruEnabled", true,
		"name", o.Name,
		"namedLayoutInfos", []any{},
		"networkScopeFieldName", nil,
		"queryable", true,
		"recordTypeInfos", []any{},
		"replicateable", true,
		"retrieveable", true,
		"searchable", true,
		"supportedScopes", []map[string]string{{"label": "All " + o.LabelPlural, "name": "everything"}, {"label": "My " + o.LabelPlural, "name": "mine"}},
		"triggerable", true,
		"undeletable", true,
		"updateable", true,
		"urls", urls,
	)
	return jsonResp(http.StatusOK, body)
}
