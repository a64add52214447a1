package emulator

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Transaction is what a loyalty.transaction.posted event carries.
type Transaction struct {
	ID         string    `json:"id"`
	Version    int64     `json:"version"`
	MemberID   string    `json:"member_id"`
	Kind       string    `json:"kind"`   // accrual, redemption
	Status     string    `json:"status"` // posted, pending
	Amount     float64   `json:"amount"`
	Quantity   int       `json:"quantity"`
	Points     int64     `json:"points"` // earned (accrual) or spent (redemption, negative)
	OccurredAt time.Time `json:"occurred_at"`
	Store      Store     `json:"store"`
}

// Store is where a transaction happened.
type Store struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Brand string `json:"brand"`
}

// TransactionEvent is the structured-mode JSON of one transaction.
type TransactionEvent struct {
	SpecVersion     string      `json:"specversion"`
	ID              string      `json:"id"`
	Source          string      `json:"source"`
	Type            string      `json:"type"`
	Subject         string      `json:"subject"`
	Time            time.Time   `json:"time"`
	DataContentType string      `json:"datacontenttype"`
	Data            Transaction `json:"data"`
}

var stores = []Store{
	{"ST-75001", "Paris Louvre", "Acme"}, {"ST-69002", "Lyon Bellecour", "Acme"},
	{"ST-13001", "Marseille Vieux-Port", "Acme Outlet"}, {"ST-33000", "Bordeaux Quinconces", "Acme"},
}

// NewTransactions makes n posted transactions of the given members (sorted
// ids), reproducibly from seed, numbered from first, between start and an
// hour later.
func NewTransactions(members []string, n, first int, seed uint64, start time.Time) []TransactionEvent {
	if len(members) == 0 || n <= 0 {
		return nil
	}
	members = slices.Sorted(slices.Values(members))
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	out := make([]TransactionEvent, n)
	for i := range out {
		kind, status := "accrual", "posted"
		if rng.IntN(10) == 0 {
			kind = "redemption"
		}
		if rng.IntN(20) == 0 {
			status = "pending"
		}
		amount := math.Round(rng.Float64()*20000) / 100
		points := int64(amount)
		if kind == "redemption" {
			points = -int64(rng.IntN(5)+1) * 100
		}
		at := start.Add(time.Duration(rng.IntN(3600)) * time.Second).UTC()
		id := fmt.Sprintf("T-%07d", first+i)
		out[i] = TransactionEvent{SpecVersion: "1.0", ID: "evt-" + id, Source: "urn:loyaltyhub:ledger-emulator",
			Type: "loyalty.transaction.posted", Subject: id, Time: at, DataContentType: "application/json",
			Data: Transaction{ID: id, Version: 1, MemberID: members[rng.IntN(len(members))], Kind: kind, Status: status,
				Amount: amount, Quantity: rng.IntN(5) + 1, Points: points, OccurredAt: at, Store: stores[rng.IntN(len(stores))]}}
	}
	return out
}

// SendTransactions posts transactions like Send.
func (s *Sender) SendTransactions(ctx context.Context, txns []TransactionEvent) error {
	return sendAll(ctx, s, txns, nil)
}
