package connectors

import "fmt"

// Refusal is a target's refusal of a whole call for a cause in its records:
// the HTTP 400 an all-or-nothing batch API answers when one record of many
// is bad.
type Refusal struct {
	Code, Message string
}

// Isolate writes the records at idx with call and, when the target refuses
// the call as a whole (call returns a Refusal), splits it in halves and
// writes each again, down to single records, so that the records at fault
// are refused alone and the others written. It spends at most budget extra
// calls: past that, a refused call's records are refused together, so a
// cause common to every record does not cost two calls a record. Refused
// records get Permanent results; call sets the results of the records it
// writes. An error from call (the call failed as a whole: network, 5xx,
// auth) is returned at once.
func Isolate(idx []int, budget int, results []Result, call func(idx []int) (*Refusal, error)) error {
	left := budget
	var write func(idx []int) error
	write = func(idx []int) error {
		ref, err := call(idx)
		if err != nil || ref == nil {
			return err
		}
		if len(idx) == 1 || left < 2 {
			msg := ref.Message
			if len(idx) > 1 {
				msg = fmt.Sprintf("refused with %d other records (not isolated further): %s", len(idx)-1, msg)
			}
			for _, i := range idx {
				results[i] = Result{Status: StatusPermanent, Code: ref.Code, Message: msg}
			}
			return nil
		}
		left -= 2
		half := len(idx) / 2
		if err := write(idx[:half]); err != nil {
			return err
		}
		return write(idx[half:])
	}
	return write(idx)
}
