package bus

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults applied by Open to zero-valued Config fields.
const (
	DefaultStream         = "LOYALTYHUB"
	DefaultSubjectPrefix  = "loyaltyhub"
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultDedupWindow    = 2 * time.Minute
	DefaultAckWait        = 30 * time.Second
	DefaultNakDelay       = time.Second
	DefaultMaxNakDelay    = time.Minute
	DefaultMaxAckPending  = 1000
	DefaultPublishTimeout = 10 * time.Second
	DefaultCloseTimeout   = 30 * time.Second
	DefaultClientName     = "loyaltyhub"
)

// Config configures the bus. The zero value plus StoreDir is a working
// embedded bus.
type Config struct {
	// URL is the NATS server or cluster to use, e.g. "nats://nats-1:4222,nats://nats-2:4222".
	// Empty (the default) starts a NATS server with JetStream inside this process,
	// reachable only from this process, storing under StoreDir.
	URL string

	// StoreDir is where the embedded server keeps JetStream data (created if missing,
	// mode 0750). Required when URL is empty; ignored otherwise. Only one process may
	// use a StoreDir at a time.
	StoreDir string

	// SyncAlways makes the embedded server fsync every stored message before acking it
	// (survives power loss, much slower). Default false: a stored message is written to
	// the OS before the ack (it survives a crash or kill of this process) and fsynced
	// every 2 minutes. Ignored with URL (the cluster's own settings apply).
	SyncAlways bool

	// Stream is the JetStream stream that holds every topic. Default "LOYALTYHUB".
	// Letters, digits, '-' and '_' only (no dots).
	Stream string

	// SubjectPrefix is prepended to every topic: with the default "loyaltyhub", topic
	// "ledger.member" is stored on subject "loyaltyhub.ledger.member", and the stream
	// captures "loyaltyhub.>". Dot-separated tokens of letters, digits, '-' and '_'.
	SubjectPrefix string

	// MaxAge is how long the stream keeps a message, acked or not. Default 7 days.
	// A consumer that stays away longer than MaxAge misses the expired messages.
	MaxAge time.Duration

	// MaxBytes caps the stream's size in bytes. Default 0: no cap beyond MaxAge and
	// the server's storage limit. When the cap is reached, Publish fails (the stream
	// discards new messages, never unread old ones).
	MaxBytes int64

	// Replicas is the number of copies of the stream (and its consumers) on a
	// JetStream cluster: 1, 3 or 5 make sense. Default 1. Must be 1 for the embedded server.
	Replicas int

	// DedupWindow is the stream's duplicate window: a message published with metadata
	// "Nats-Msg-Id" whose id was already stored within this window is dropped by the
	// server (Publish still succeeds). Default 2 minutes; at most MaxAge. The bus itself
	// never sets Nats-Msg-Id (see the package doc).
	DedupWindow time.Duration

	// AckWait is how long the server waits for the ack of a delivered message before it
	// delivers it again, possibly to another replica. While a handler holds a message, the
	// subscriber tells the server it is still working every AckWait/3, so AckWait only
	// runs out when the holder is gone (crash, partition, hang of the whole process).
	// Default 30 seconds.
	AckWait time.Duration

	// NakDelay is how long the server waits before redelivering a Nacked message, for its
	// first Nack; the delay doubles with every further delivery up to MaxNakDelay.
	// Default 1 second.
	NakDelay time.Duration

	// MaxNakDelay caps the redelivery delay after a Nack. Default 1 minute.
	MaxNakDelay time.Duration

	// MaxAckPending caps, per durable consumer and across all processes sharing it, how
	// many messages may be delivered and not yet acked. Each subscriber holds at most its
	// own inflight, so this only matters when many replicas share a consumer.
	// Default 1000; a consumer whose Subscriber holds more inflight gets that.
	MaxAckPending int

	// PublishTimeout is how long Publish waits for JetStream to confirm each message
	// (and, under back-pressure, to accept it). Default 10 seconds.
	PublishTimeout time.Duration

	// CloseTimeout is how long closing a Subscriber (or the Bus) waits for handlers to
	// ack or nack the messages they hold; messages still held after it are redelivered
	// after AckWait. Also bounds draining the connection. Default 30 seconds.
	CloseTimeout time.Duration

	// ClientName is the NATS connection name shown in server monitoring. Default "loyaltyhub".
	ClientName string

	// ClientOptions are extra NATS client options for URL, e.g. nats.UserCredentials(path),
	// nats.RootCAs(path) or nats.UserInfo(user, password). They are applied after the
	// bus's own options (reconnect forever, handlers that log).
	ClientOptions []nats.Option
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	tokenRE  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	maxNames = 128
)

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
		if c.MaxAge > 0 && c.MaxAge < c.DedupWindow {
			c.DedupWindow = c.MaxAge
		}
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.NakDelay == 0 {
		c.NakDelay = DefaultNakDelay
	}
	if c.MaxNakDelay == 0 {
		c.MaxNakDelay = DefaultMaxNakDelay
		if c.MaxNakDelay < c.NakDelay {
			c.MaxNakDelay = c.NakDelay
		}
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.ClientName == "" {
		c.ClientName = DefaultClientName
	}
}

// Validate reports every problem in c at once, judging zero fields by their
// defaults (as Open does).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.URL == "" && c.StoreDir == "" {
		bad("StoreDir is required when URL is empty (the embedded server stores there): set a writable directory, or set URL to use an external NATS server")
	}
	if !nameRE.MatchString(c.Stream) || len(c.Stream) > maxNames {
		bad("Stream %q is not a valid stream name: use up to %d letters, digits, '-' or '_' (no dots or spaces)", c.Stream, maxNames)
	}
	if err := checkSubject(c.SubjectPrefix, false); err != nil {
		bad("SubjectPrefix %q: %v", c.SubjectPrefix, err)
	}
	if c.MaxAge < 0 {
		bad("MaxAge %s must be positive", c.MaxAge)
	}
	if c.MaxBytes < 0 {
		bad("MaxBytes %d must be 0 (no cap) or positive", c.MaxBytes)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("Replicas %d must be between 1 and 5", c.Replicas)
	} else if c.URL == "" && c.Replicas != 1 {
		bad("Replicas %d needs a JetStream cluster: the embedded server (URL empty) holds one copy, set Replicas to 1 or set URL", c.Replicas)
	}
	if c.DedupWindow < 0 || (c.MaxAge > 0 && c.DedupWindow > c.MaxAge) {
		bad("DedupWindow %s must be positive and at most MaxAge %s", c.DedupWindow, c.MaxAge)
	}
	if c.AckWait < 100*time.Millisecond {
		bad("AckWait %s must be at least 100ms", c.AckWait)
	}
	if c.NakDelay < 0 {
		bad("NakDelay %s must be positive", c.NakDelay)
	}
	if c.MaxNakDelay < c.NakDelay {
		bad("MaxNakDelay %s must be at least NakDelay %s", c.MaxNakDelay, c.NakDelay)
	}
	if c.MaxAckPending < 1 {
		bad("MaxAckPending %d must be at least 1", c.MaxAckPending)
	}
	if c.PublishTimeout <= 0 {
		bad("PublishTimeout %s must be positive", c.PublishTimeout)
	}
	if c.CloseTimeout <= 0 {
		bad("CloseTimeout %s must be positive", c.CloseTimeout)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus config: %w", err)
	}
	return nil
}

// checkSubject checks a dot-separated subject; wildcards '*' (one token) and
// '>' (last token, the rest) are allowed only when wild is true.
func checkSubject(s string, wild bool) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case wild && t == "*":
		case wild && t == ">" && i == len(tokens)-1:
		case t == "":
			return errors.New("has an empty token (leading, trailing or double dot)")
		case !tokenRE.MatchString(t):
			if wild {
				return fmt.Errorf("token %q is not valid: use letters, digits, '-' or '_', or the wildcards '*' (one token) and '>' (last token)", t)
			}
			return fmt.Errorf("token %q is not valid: use letters, digits, '-' or '_' separated by dots", t)
		}
	}
	return nil
}
