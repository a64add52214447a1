package emulator

import (
	"fmt"
	"sort"
	"strings"
)

// fieldType is a describe "type" value.
type fieldType string

const (
	tID            fieldType = "id"
	tString        fieldType = "string"
	tTextarea      fieldType = "textarea"
	tEmail         fieldType = "email"
	tPhone         fieldType = "phone"
	tURL           fieldType = "url"
	tPicklist      fieldType = "picklist"
	tMultipicklist fieldType = "multipicklist"
	tBoolean       fieldType = "boolean"
	tInt           fieldType = "int"
	tDouble        fieldType = "double"
	tCurrency      fieldType = "currency"
	tPercent       fieldType = "percent"
	tDate          fieldType = "date"
	tDatetime      fieldType = "datetime"
	tReference     fieldType = "reference"
)

func (t fieldType) isText() bool {
	switch t {
	case tID, tString, tTextarea, tEmail, tPhone, tURL, tPicklist, tMultipicklist, tReference:
		return true
	}
	return false
}

func (t fieldType) isNumber() bool {
	return t == tInt || t == tDouble || t == tCurrency || t == tPercent
}

func (t fieldType) soapType() string {
	switch t {
	case tID, tReference:
		return "tns:ID"
	case tBoolean:
		return "xsd:boolean"
	case tInt:
		return "xsd:int"
	case tDouble, tCurrency, tPercent:
		return "xsd:double"
	case tDate:
		return "xsd:date"
	case tDatetime:
		return "xsd:dateTime"
	}
	return "xsd:string"
}

type picklistValue struct {
	Active       bool    `json:"active"`
	DefaultValue bool    `json:"defaultValue"`
	Label        string  `json:"label"`
	ValidFor     *string `json:"validFor"`
	Value        string  `json:"value"`
}

// fieldDef is one field of an object, as describe shows it.
type fieldDef struct {
	Name, Label       string
	Type              fieldType
	Length            int
	Precision, Scale  int
	Digits            int
	Createable        bool
	Updateable        bool
	Nillable          bool
	DefaultedOnCreate bool
	DefaultValue      any
	ExternalID        bool
	IDLookup          bool
	Unique            bool
	CaseSensitive     bool
	NameField         bool
	AutoNumber        bool
	Calculated        bool
	Custom            bool
	Filterable        bool
	Sortable          bool
	Groupable         bool
	Picklist          []picklistValue
	Restricted        bool
	ReferenceTo       []string
	RelationshipName  string
	autoFormat        string // for auto-number fields: fmt format of the sequence
	// uniqueWith names a field that, with this one, must be unique together (the
	// membership number within a program); describe shows no "unique" for it.
	uniqueWith string
}

// required reports whether a create must give the field a value.
func (f *fieldDef) required() bool {
	return f.Createable && !f.Nillable && !f.DefaultedOnCreate && f.Type != tBoolean
}

// indexed reports whether the store keeps a value index for the field.
func (f *fieldDef) indexed() bool { return f.ExternalID || f.Unique || f.IDLookup }

func fld(name, label string, t fieldType) *fieldDef {
	f := &fieldDef{Name: name, Label: label, Type: t, Createable: true, Updateable: true, Nillable: true,
		Filterable: true, Sortable: true, Groupable: true}
	switch t {
	case tString:
		f.Length = 255
	case tTextarea:
		f.Length = 255
		f.Sortable, f.Groupable = false, false
	case tEmail, tURL:
		f.Length = 80
	case tPhone:
		f.Length = 40
	case tPicklist:
		f.Length = 255
	case tMultipicklist:
		f.Length = 4099
		f.Sortable, f.Groupable = false, false
	case tReference, tID:
		f.Length = 18
	case tBoolean:
		f.Nillable = false
		f.DefaultedOnCreate = true
		f.DefaultValue = false
	case tInt:
		f.Digits = 9
	case tDouble, tCurrency, tPercent:
		f.Precision, f.Scale = 18, 0
		f.Groupable = false
	case tDatetime:
		f.Groupable = false
	}
	return f
}

func (f *fieldDef) size(n int) *fieldDef { f.Length = n; return f }
func (f *fieldDef) req() *fieldDef       { f.Nillable = false; return f }
func (f *fieldDef) readOnly() *fieldDef  { f.Createable, f.Updateable = false, false; return f }
func (f *fieldDef) createOnly() *fieldDef {
	f.Updateable = false
	return f
}
func (f *fieldDef) num(precision, scale int) *fieldDef {
	f.Precision, f.Scale = precision, scale
	return f
}
func (f *fieldDef) idLookup() *fieldDef { f.IDLookup = true; return f }
func (f *fieldDef) nameField() *fieldDef {
	f.NameField = true
	f.IDLookup = true
	return f
}
func (f *fieldDef) defaulted(v any) *fieldDef {
	f.DefaultedOnCreate = true
	f.DefaultValue = v
	return f
}

// pick sets the picklist values; the first value marked with a leading "*" is the default.
func (f *fieldDef) pick(restricted bool, values ...string) *fieldDef {
	f.Restricted = restricted
	for _, v := range values {
		def := strings.HasPrefix(v, "*")
		v = strings.TrimPrefix(v, "*")
		f.Picklist = append(f.Picklist, picklistValue{Active: true, DefaultValue: def, Label: v, Value: v})
		if def {
			f.DefaultedOnCreate = true
			f.DefaultValue = v
		}
	}
	return f
}

func uniqueWithin(f *fieldDef, other string) *fieldDef {
	f.uniqueWith = other
	return f
}

func (f *fieldDef) ref(relationship string, objects ...string) *fieldDef {
	f.RelationshipName = relationship
	f.ReferenceTo = objects
	return f
}

func (f *fieldDef) autoNumber(format string) *fieldDef {
	f.AutoNumber = true
	f.autoFormat = format
	f.Length = 30
	f.Createable, f.Updateable, f.Nillable = false, false, false
	f.DefaultedOnCreate = true
	return f
}

// objectDef is one sObject type.
type objectDef struct {
	Name, Label, LabelPlural, KeyPrefix string
	Custom                              bool
	Fields                              []*fieldDef
	byLower                             map[string]*fieldDef
	relByLower                          map[string]*fieldDef
	children                            []childRel
}

type childRel struct{ object, field string }

func (o *objectDef) field(name string) *fieldDef { return o.byLower[strings.ToLower(name)] }

func (o *objectDef) add(fs ...*fieldDef) {
	for _, f := range fs {
		o.Fields = append(o.Fields, f)
	}
}

func (o *objectDef) index() {
	o.byLower = make(map[string]*fieldDef, len(o.Fields))
	o.relByLower = map[string]*fieldDef{}
	for _, f := range o.Fields {
		o.byLower[strings.ToLower(f.Name)] = f
		if f.Type == tReference && f.RelationshipName != "" {
			o.relByLower[strings.ToLower(f.RelationshipName)] = f
		}
	}
}

// systemFields are the fields every object has; owned objects also get OwnerId.
func systemFields(owned bool) (head, tail []*fieldDef) {
	id := fld("Id", "Record ID", tID).readOnly().idLookup()
	id.Nillable = false
	id.DefaultedOnCreate = true
	id.Groupable = true
	deleted := fld("IsDeleted", "Deleted", tBoolean).readOnly()
	head = []*fieldDef{id, deleted}
	if owned {
		owner := fld("OwnerId", "Owner ID", tReference).ref("Owner", "User").defaulted(nil)
		owner.Nillable = false
		head = append(head, owner)
	}
	created := fld("CreatedDate", "Created Date", tDatetime).readOnly().defaulted(nil)
	created.Nillable = false
	createdBy := fld("CreatedById", "Created By ID", tReference).ref("CreatedBy", "User").readOnly().defaulted(nil)
	createdBy.Nillable = false
	modified := fld("LastModifiedDate", "Last Modified Date", tDatetime).readOnly().defaulted(nil)
	modified.Nillable = false
	modifiedBy := fld("LastModifiedById", "Last Modified By ID", tReference).ref("LastModifiedBy", "User").readOnly().defaulted(nil)
	modifiedBy.Nillable = false
	stamp := fld("SystemModstamp", "System Modstamp", tDatetime).readOnly().defaulted(nil)
	stamp.Nillable = false
	tail = []*fieldDef{created, createdBy, modified, modifiedBy, stamp}
	return head, tail
}

func newObject(name, label, plural, prefix string, owned bool, fields ...*fieldDef) *objectDef {
	o := &objectDef{Name: name, Label: label, LabelPlural: plural, KeyPrefix: prefix}
	head, tail := systemFields(owned)
	o.add(head...)
	o.add(fields...)
	o.add(tail...)
	return o
}

var leadSources = []string{"Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"}

// standardObjects builds the standard objects the emulator knows, fresh for each server.
func standardObjects() []*objectDef {
	account := newObject("Account", "Account", "Accounts", "001", true,
		fld("MasterRecordId", "Master Record ID", tReference).ref("MasterRecord", "Account").readOnly(),
		fld("Name", "Account Name", tString).req().nameField(),
		fld("Type", "Account Type", tPicklist).pick(false, "Prospect", "Customer - Direct", "Customer - Channel",
			"Channel Partner / Reseller", "Installation Partner", "Technology Partner", "Other"),
		fld("ParentId", "Parent Account ID", tReference).ref("Parent", "Account"),
		fld("BillingStreet", "Billing Street", tTextarea),
		fld("BillingCity", "Billing City", tString).size(40),
		fld("BillingState", "Billing State/Province", tString).size(80),
		fld("BillingPostalCode", "Billing Zip/Postal Code", tString).size(20),
		fld("BillingCountry", "Billing Country", tString).size(80),
		fld("ShippingStreet", "Shipping Street", tTextarea),
		fld("ShippingCity", "Shipping City", tString).size(40),
		fld("ShippingState", "Shipping State/Province", tString).size(80),
		fld("ShippingPostalCode", "Shipping Zip/Postal Code", tString).size(20),
		fld("ShippingCountry", "Shipping Country", tString).size(80),
		fld("Phone", "Account Phone", tPhone),
		fld("Fax", "Account Fax", tPhone),
		fld("AccountNumber", "Account Number", tString).size(40),
		fld("Website", "Website", tURL).size(255),
		fld("Industry", "Industry", tPicklist).pick(false, "Agriculture", "Apparel", "Banking", "Biotechnology",
			"Chemicals", "Communications", "Construction", "Consulting", "Education", "Electronics", "Energy",
			"Engineering", "Entertainment", "Environmental", "Finance", "Food & Beverage", "Government",
			"Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Not For Profit",
			"Recreation", "Retail", "Shipping", "Technology", "Telecommunications", "Transportation", "Utilities", "Other"),
		fld("AnnualRevenue", "Annual Revenue", tCurrency).num(18, 0),
		fld("NumberOfEmployees", "Employees", tInt).num(0, 0),
		fld("Ownership", "Ownership", tPicklist).pick(false, "Public", "Private", "Subsidiary", "Other"),
		fld("Rating", "Account Rating", tPicklist).pick(false, "Hot", "Warm", "Cold"),
		fld("Site", "Account Site", tString).size(80),
		fld("AccountSource", "Account Source", tPicklist).pick(false, leadSources...),
		fld("Description", "Account Description", tTextarea).size(32000),
		fld("LastActivityDate", "Last Activity", tDate).readOnly(),
	)

	contactName := fld("Name", "Full Name", tString).size(121).readOnly().nameField()
	contactName.Calculated = true
	contact := newObject("Contact", "Contact", "Contacts", "003", true,
		fld("MasterRecordId", "Master Record ID", tReference).ref("MasterRecord", "Contact").readOnly(),
		fld("AccountId", "Account ID", tReference).ref("Account", "Account"),
		fld("LastName", "Last Name", tString).size(80).req(),
		fld("FirstName", "First Name", tString).size(40),
		fld("Salutation", "Salutation", tPicklist).pick(false, "Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
		contactName,
		fld("MailingStreet", "Mailing Street", tTextarea),
		fld("MailingCity", "Mailing City", tString).size(40),
		fld("MailingState", "Mailing State/Province", tString).size(80),
		fld("MailingPostalCode", "Mailing Zip/Postal Code", tString).size(20),
		fld("MailingCountry", "Mailing Country", tString).size(80),
		fld("Phone", "Business Phone", tPhone),
		fld("Fax", "Business Fax", tPhone),
		fld("MobilePhone", "Mobile Phone", tPhone),
		fld("HomePhone", "Home Phone", tPhone),
		fld("OtherPhone", "Other Phone", tPhone),
		fld("ReportsToId", "Reports To ID", tReference).ref("ReportsTo", "Contact"),
		fld("Email", "Email", tEmail),
		fld("Title", "Title", tString).size(128),
		fld("Department", "Department", tString).size(80),
		fld("LeadSource", "Lead Source", tPicklist).pick(false, leadSources...),
		fld("Birthdate", "Birthdate", tDate),
		fld("Description", "Contact Description", tTextarea).size(32000),
		fld("HasOptedOutOfEmail", "Email Opt Out", tBoolean),
		fld("DoNotCall", "Do Not Call", tBoolean),
		fld("LastActivityDate", "Last Activity", tDate).readOnly(),
	)

	program := newObject("LoyaltyProgram", "Loyalty Program", "Loyalty Programs", "0lp", true,
		fld("Name", "Program Name", tString).req().nameField(),
		fld("Status", "Status", tPicklist).pick(true, "*Active", "Inactive"),
		fld("StartDate", "Start Date", tDate),
		fld("EndDate", "End Date", tDate),
		fld("Description", "Description", tTextarea).size(32000),
	)

	member := newObject("LoyaltyProgramMember", "Loyalty Program Member", "Loyalty Program Members", "0lM", true,
		uniqueWithin(fld("MembershipNumber", "Membership Number", tString).req().nameField(), "ProgramId"),
		fld("ProgramId", "Program ID", tReference).ref("Program", "LoyaltyProgram").req().createOnly(),
		fld("ContactId", "Contact ID", tReference).ref("Contact", "Contact"),
		fld("AccountId", "Account ID", tReference).ref("Account", "Account"),
		fld("MemberType", "Member Type", tPicklist).pick(true, "*Individual", "Corporate", "Group"),
		fld("MemberStatus", "Member Status", tPicklist).pick(true, "*Active", "Inactive", "Custom"),
		fld("EnrollmentDate", "Enrollment Date", tDate).req(),
		fld("EnrollmentChannel", "Enrollment Channel", tPicklist).pick(true, "CallCenter", "Email", "Franchise",
			"Mobile", "Partner", "POS", "Print", "Social", "Store", "Web"),
		fld("MembershipEndDate", "Membership End Date", tDate),
		fld("LastActivityDate", "Last Activity Date", tDate),
		fld("CanReceivePromotions", "Can Receive Promotions", tBoolean),
		fld("CanReceivePartnerPromotions", "Can Receive Partner Promotions", tBoolean),
		fld("ReferredByMemberId", "Referred By Member ID", tReference).ref("ReferredByMember", "LoyaltyProgramMember"),
		fld("RelatedCorporateMemberId", "Related Corporate Member ID", tReference).ref("RelatedCorporateMember", "LoyaltyProgramMember"),
		fld("TransactionJournalStatementFrequency", "Transaction Journal Statement Frequency", tPicklist).pick(true, "Monthly", "Quarterly"),
		fld("TransactionJournalStatementMethod", "Transaction Journal Statement Method", tPicklist).pick(true, "Email", "Mail"),
	)

	journalName := fld("Name", "Transaction Journal Number", tString).nameField().autoNumber("%010d")
	journal := newObject("TransactionJournal", "Transaction Journal", "Transaction Journals", "0lV", true,
		journalName,
		fld("ActivityDate", "Activity Date", tDatetime).req(),
		fld("JournalDate", "Journal Date", tDatetime),
		fld("ExternalTransactionNumber", "External Transaction Number", tString).idLookup(),
		fld("JournalTypeId", "Journal Type ID", tReference).ref("JournalType", "JournalType"),
		fld("JournalSubTypeId", "Journal Sub-Type ID", tReference).ref("JournalSubType", "JournalSubType"),
		fld("LoyaltyProgramId", "Loyalty Program ID", tReference).ref("LoyaltyProgram", "LoyaltyProgram"),
		fld("MemberId", "Member ID", tReference).ref("Member", "LoyaltyProgramMember"),
		fld("Status", "Status", tPicklist).pick(true, "*Pending", "Processed", "Cancelled", "Error"),
		fld("TransactionAmount", "Transaction Amount", tCurrency).num(16, 2),
		fld("InvoiceDate", "Invoice Date", tDate),
		fld("Brand", "Brand", tString),
		fld("Establishment", "Establishment", tString),
		fld("TransactionLocation", "Transaction Location", tString),
		fld("VoucherCode", "Voucher Code", tString),
		fld("ProductId", "Product ID", tReference).ref("Product", "Product2"),
		fld("ProductCategoryId", "Product Category ID", tReference).ref("ProductCategory", "ProductCategory"),
		fld("Quantity", "Quantity", tDouble).num(18, 2),
	)

	voucherNumber := fld("VoucherNumber", "Voucher Number", tString).nameField().autoNumber("%08d")
	voucher := newObject("Voucher", "Voucher", "Vouchers", "0kD", true,
		voucherNumber,
		fld("VoucherCode", "Voucher Code", tString),
		fld("Status", "Status", tPicklist).pick(true, "*Issued", "Redeemed", "Expired", "Cancelled"),
		fld("EffectiveDate", "Effective Date", tDate).req(),
		fld("EffectiveDateTime", "Effective Date Time", tDatetime),
		fld("ExpirationDate", "Expiration Date", tDate),
		fld("FaceValue", "Face Value", tCurrency).num(16, 2),
		fld("DiscountPercent", "Discount Percent", tPercent).num(5, 2),
		fld("RedeemedValue", "Redeemed Value", tCurrency).num(16, 2),
		fld("RemainingValue", "Remaining Value", tCurrency).num(16, 2),
		fld("UseDate", "Use Date", tDate),
		fld("LoyaltyProgramMemberId", "Loyalty Program Member ID", tReference).ref("LoyaltyProgramMember", "LoyaltyProgramMember"),
		fld("ContactId", "Contact ID", tReference).ref("Contact", "Contact"),
		fld("AccountId", "Account ID", tReference).ref("Account", "Account"),
		fld("BenefitId", "Benefit ID", tReference).ref("Benefit", "Benefit"),
		fld("VoucherDefinitionId", "Voucher Definition ID", tReference).ref("VoucherDefinition", "VoucherDefinition"),
	)
	return []*objectDef{account, contact, program, member, journal, voucher}
}

// schema is the set of objects of one server.
type schema struct {
	objects  []*objectDef
	byLower  map[string]*objectDef
	byPrefix map[string]*objectDef
}

func (s *schema) object(name string) *objectDef { return s.byLower[strings.ToLower(name)] }

// buildSchema merges the custom fields and objects of fields into the standard objects.
func buildSchema(fields Fields) (*schema, error) {
	objs := standardObjects()
	sc := &schema{byLower: map[string]*objectDef{}, byPrefix: map[string]*objectDef{}}
	for _, o := range objs {
		o.index()
		sc.byLower[strings.ToLower(o.Name)] = o
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	customN := 0
	for _, name := range names {
		if sc.object(name) != nil {
			continue
		}
		if !strings.HasSuffix(name, "__c") {
			return nil, fmt.Errorf("object %q: not a standard object of the emulator (%s) and not a custom object (name ending in __c)",
				name, strings.Join(standardObjectNames(), ", "))
		}
		label := strings.ReplaceAll(strings.TrimSuffix(name, "__c"), "_", " ")
		o := newObject(name, label, label+"s", fmt.Sprintf("a0%c", base62[10+customN%52]), true,
			fld("Name", label+" Name", tString).size(80).req().nameField())
		o.Custom = true
		customN++
		o.index()
		objs = append(objs, o)
		sc.byLower[strings.ToLower(name)] = o
	}
	for _, name := range names {
		o := sc.object(name)
		for _, cf := range fields[name] {
			f, err := cf.toFieldDef()
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, cf.Name, err)
			}
			if o.field(f.Name) != nil {
				return nil, fmt.Errorf("%s.%s: the object already has a field of that name", name, cf.Name)
			}
			if f.Type == tReference {
				target := sc.object(f.ReferenceTo[0])
				if target == nil {
					return nil, fmt.Errorf("%s.%s: referenceTo %q is not an object of the emulator", name, cf.Name, f.ReferenceTo[0])
				}
				f.ReferenceTo = []string{target.Name}
			}
			// custom fields go before the trailing audit fields, like describe lists them
			o.Fields = append(o.Fields[:len(o.Fields)-5], append([]*fieldDef{f}, o.Fields[len(o.Fields)-5:]...)...)
			o.index()
		}
	}
	sc.objects = objs
	for _, o := range objs {
		sc.byPrefix[o.KeyPrefix] = o
		for _, f := range o.Fields {
			if f.Type != tReference {
				continue
			}
			for _, t := range f.ReferenceTo {
				if target := sc.object(t); target != nil {
					target.children = append(target.children, childRel{object: o.Name, field: f.Name})
				}
			}
		}
	}
	return sc, nil
}

func standardObjectNames() []string {
	var out []string
	for _, o := range standardObjects() {
		out = append(out, o.Name)
	}
	return out
}
