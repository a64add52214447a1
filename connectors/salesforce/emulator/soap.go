package emulator

import (
	"crypto/hmac"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// soapEnvelope is the part of a SOAP partner-API request the emulator reads: login().
type soapEnvelope struct {
	Body struct {
		Login *struct {
			Username string `xml:"username"`
			Password string `xml:"password"`
		} `xml:"login"`
	} `xml:"Body"`
}

// handleSOAP answers the SOAP API's login() call (POST /services/Soap/u/vv.0 or /c/vv.0),
// which simple-salesforce and jsforce use by default to log in with a username, password
// and security token. The session it returns works on the REST API. Other SOAP calls get
// a fault: the emulator speaks REST.
func (s *Server) handleSOAP(w http.ResponseWriter, r *http.Request) {
	s.countCall("auth")
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // services Soap u 63.0 [orgId]
	if r.Method != http.MethodPost || len(segs) < 4 || (segs[2] != "u" && segs[2] != "c") {
		s.soapFault(w, http.StatusNotFound, "sf:INVALID_OPERATION", "the emulator serves only the SOAP partner/enterprise login() call at POST /services/Soap/u/{version}")
		return
	}
	version := strings.TrimPrefix(segs[3], "v")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var env soapEnvelope
	if err == nil {
		err = xml.Unmarshal(body, &env)
	}
	if err != nil || env.Body.Login == nil {
		s.soapFault(w, http.StatusInternalServerError, "soapenv:Client", "the emulator serves only the SOAP login() call; use the REST API for everything else")
		return
	}
	in := env.Body.Login
	if in.Username != s.cfg.Username || !hmac.Equal([]byte(in.Password), []byte(s.cfg.Password+s.cfg.SecurityToken)) {
		s.soapFault(w, http.StatusInternalServerError, "sf:INVALID_LOGIN", "INVALID_LOGIN: Invalid username, password, security token; or user locked out.")
		return
	}
	token := s.newSession()
	s.statsMu.Lock()
	s.stats.TokensIssued++
	s.statsMu.Unlock()
	base := s.instanceURL(r)
	esc := func(v string) string {
		var sb strings.Builder
		_ = xml.EscapeText(&sb, []byte(v))
		return sb.String()
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result>`+
		`<metadataServerUrl>%[1]s/services/Soap/m/%[2]s/%[3]s</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>false</sandbox>`+
		`<serverUrl>%[1]s/services/Soap/%[7]s/%[2]s/%[3]s</serverUrl><sessionId>%[4]s</sessionId><userId>%[5]s</userId>`+
		`<userInfo><accessibilityMode>false</accessibilityMode><currencySymbol>$</currencySymbol><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>`+
		`<organizationId>%[3]s</organizationId><organizationMultiCurrency>false</organizationMultiCurrency><organizationName>loyaltyhub emulator</organizationName>`+
		`<userEmail>%[6]s</userEmail><userFullName>Emulator Admin</userFullName><userId>%[5]s</userId><userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>`+
		`<userName>%[6]s</userName><userTimeZone>GMT</userTimeZone><userType>Standard</userType></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>`,
		esc(base), esc(version), s.orgID, esc(token), s.userID, esc(s.cfg.Username), segs[2])
}

func (s *Server) soapFault(w http.ResponseWriter, status int, code, msg string) {
	var sb strings.Builder
	_ = xml.EscapeText(&sb, []byte(msg))
	exception := strings.TrimPrefix(code, "sf:")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>`+
		`<faultcode>%s</faultcode><faultstring>%s</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>%s</sf:exceptionCode><sf:exceptionMessage>%s</sf:exceptionMessage></sf:LoginFault></detail>`+
		`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`, code, sb.String(), exception, sb.String())
}
