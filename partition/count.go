package partition

import (
	"github.com/dgraph-io/badger/v4"
)

// Count returns the number of live keys of the replica, and the seq of its
// last record as of the snapshot it counted. It walks the keys of the data
// incarnation without their values, reading a value only for a key with an
// expiry (to tell whether it is live), so it costs time in proportion to
// the keys but no memory.
func (r *Replica) Count() (n int64, seq uint64, err error) {
	now := r.s.now()
	err = r.view(func(txn *badger.Txn, st *State) error {
		n, seq = 0, st.Seq
		return iterItems(txn, r.dataPrefix(st.DataInc), nil, func(item *badger.Item) (bool, error) {
			if item.ExpiresAt() == 0 {
				n++
				return true, nil
			}
			var exp int64
			if err := item.Value(func(b []byte) error {
				var err error
				exp, _, err = decodeValue(b)
				return err
			}); err != nil {
				return false, err
			}
			if live(exp, now) {
				n++
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, 0, r.wrapRead("count", err)
	}
	return n, seq, nil
}
