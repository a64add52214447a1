package salesforce

import (
	"strconv"
	"strings"
	"time"
)

// UsageWarnFraction is the share of the daily API limit above which each new
// whole percent of usage logs a warning.
const UsageWarnFraction = 0.9

// APIUsage is the org's daily API request usage, as Salesforce last reported
// it (Sforce-Limit-Info header "api-usage=used/limit", or GET /limits).
type APIUsage struct {
	// Used is the number of API requests made in the rolling 24 hours.
	Used int64
	// Limit is the org's daily API request allocation.
	Limit int64
	// At is when the connector saw these figures.
	At time.Time
}

// Fraction is Used/Limit (0 when the limit is unknown).
func (u APIUsage) Fraction() float64 {
	if u.Limit <= 0 {
		return 0
	}
	return float64(u.Used) / float64(u.Limit)
}

// APIUsage returns the last API usage seen, and false when no answer has
// reported it yet.
func (c *Connector) APIUsage() (APIUsage, bool) {
	c.usageMu.Lock()
	defer c.usageMu.Unlock()
	return c.usage, c.haveUsage
}

// ParseLimitInfo reads the api-usage part of a Sforce-Limit-Info header, such
// as "api-usage=10018/100000; per-app-api-usage=17/250(appName=hub)".
func ParseLimitInfo(header string) (used, limit int64, ok bool) {
	for part := range strings.SplitSeq(header, ";") {
		name, value, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "api-usage") {
			continue
		}
		u, l, found := strings.Cut(strings.TrimSpace(value), "/")
		if !found {
			return 0, 0, false
		}
		used, err1 := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
		limit, err2 := strconv.ParseInt(strings.TrimSpace(l), 10, 64)
		if err1 != nil || err2 != nil || used < 0 || limit <= 0 {
			return 0, 0, false
		}
		return used, limit, true
	}
	return 0, 0, false
}

func (c *Connector) observeLimitInfo(header string) {
	if header == "" {
		return
	}
	if used, limit, ok := ParseLimitInfo(header); ok {
		c.recordUsage(used, limit, time.Now())
	}
}

// recordUsage keeps the usage and warns once per whole percent above
// UsageWarnFraction.
func (c *Connector) recordUsage(used, limit int64, at time.Time) {
	c.usageMu.Lock()
	c.usage = APIUsage{Used: used, Limit: limit, At: at}
	c.haveUsage = true
	pct := used * 100 / limit
	warn := false
	if c.usage.Fraction() > UsageWarnFraction {
		if pct > c.warnedPct {
			c.warnedPct = pct
			warn = true
		}
	} else {
		c.warnedPct = 0
	}
	c.usageMu.Unlock()
	if warn {
		c.logger.Warn("salesforce daily API usage above 90%", "used", used, "limit", limit, "percent", pct)
	}
}
