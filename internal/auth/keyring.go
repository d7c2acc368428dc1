package auth

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Secret bounds.
const (
	// MinSecretLen is the shortest cluster secret accepted, in bytes. The
	// challenge-response never sends a secret, but a peer that answers a
	// dial can record proofs and guess the secret offline: it must be too
	// long to guess.
	MinSecretLen = 16
	// MaxSecrets is the most secrets a keyring holds (one in use and the
	// ones being rotated in or out).
	MaxSecrets = 8
	// NonceLen is the length of every challenge nonce.
	NonceLen = 32
	// ProofLen is the length of every proof (an HMAC-SHA256).
	ProofLen = sha256.Size
)

// Keyring holds the keys derived from a cluster's accepted secrets, in
// the order given: the first is the one a dialer prefers. The secrets
// themselves are not kept. A Keyring is immutable and safe for concurrent
// use; a nil *Keyring means "no cluster secret".
type Keyring struct {
	rpc    [][]byte // keys of the RPC and Raft challenge-responses
	gossip [][]byte // memberlist encryption keys (AES-256)
}

// NewKeyring derives the keys of secrets. Blank lines are not secrets:
// callers reading a file drop them first (ParseSecrets). It returns nil,
// nil for no secrets.
func NewKeyring(secrets []string) (*Keyring, error) {
	if err := CheckSecrets(secrets); err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		return nil, nil
	}
	k := &Keyring{}
	for _, s := range secrets {
		k.rpc = append(k.rpc, derive(s, "zeppelin rpc v1"))
		k.gossip = append(k.gossip, derive(s, "zeppelin gossip v1"))
	}
	return k, nil
}

// CheckSecrets reports every problem with a list of secrets at once.
func CheckSecrets(secrets []string) error {
	var errs []error
	if len(secrets) > MaxSecrets {
		errs = append(errs, fmt.Errorf("%d secrets given, at most %d are accepted", len(secrets), MaxSecrets))
	}
	seen := make(map[string]bool)
	for i, s := range secrets {
		switch {
		case len(s) < MinSecretLen:
			errs = append(errs, fmt.Errorf("secret %d is %d bytes long, shorter than %d", i+1, len(s), MinSecretLen))
		case strings.TrimSpace(s) != s:
			errs = append(errs, fmt.Errorf("secret %d starts or ends with white space", i+1))
		case seen[s]:
			errs = append(errs, fmt.Errorf("secret %d is given twice", i+1))
		}
		seen[s] = true
	}
	return errors.Join(errs...)
}

// ParseSecrets reads a secret file's contents: one secret per line, the
// first the one in use; blank lines and lines starting with '#' are
// skipped, surrounding white space is dropped.
func ParseSecrets(data string) []string {
	var out []string
	for _, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
}

func derive(secret, info string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, info, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return k
}

// Len returns the number of keys.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.rpc)
}

// GossipKeys returns the memberlist keys (32 bytes each), the first one
// primary.
func (k *Keyring) GossipKeys() [][]byte {
	if k == nil {
		return nil
	}
	out := make([][]byte, len(k.gossip))
	for i, g := range k.gossip {
		out[i] = append([]byte(nil), g...)
	}
	return out
}

// Nonce returns NonceLen random bytes.
func Nonce() []byte {
	b := make([]byte, NonceLen)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// Transcript identifies one authentication exchange: both nonces and what
// the dialer claimed in it. Proofs are computed over it, so a proof is good
// for one connection only, and a claim (the node ID) cannot be changed
// without the key.
type Transcript struct {
	Protocol    string // "rpc" or "raft": a proof of one is no proof of the other
	ServerNonce []byte
	ClientNonce []byte
	From        string
	Node        bool
	User        string
}

func (t Transcript) bytes(role string) []byte {
	b := make([]byte, 0, 128)
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	field([]byte("zeppelin auth v1 " + t.Protocol + " " + role))
	field(t.ServerNonce)
	field(t.ClientNonce)
	field([]byte(t.From))
	if t.Node {
		field([]byte{1})
	} else {
		field([]byte{0})
	}
	field([]byte(t.User))
	return b
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// ClientProofs returns the dialer's proofs for t, one per key, in order.
func (k *Keyring) ClientProofs(t Transcript) [][]byte {
	if k == nil {
		return nil
	}
	msg := t.bytes("client")
	out := make([][]byte, len(k.rpc))
	for i, key := range k.rpc {
		out[i] = mac(key, msg)
	}
	return out
}

// VerifyClient checks the dialer's proofs against every key of k. It
// returns the index of the first proof that one of k's keys produced and
// that key's index, or ok false when none did.
func (k *Keyring) VerifyClient(t Transcript, proofs [][]byte) (proof, key int, ok bool) {
	if k == nil {
		return 0, 0, false
	}
	msg := t.bytes("client")
	want := make([][]byte, len(k.rpc))
	for i, key := range k.rpc {
		want[i] = mac(key, msg)
	}
	for i, p := range proofs {
		if i >= MaxSecrets {
			break
		}
		for j, w := range want {
			if hmac.Equal(p, w) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// ServerProof returns the server's proof for t with its key index key.
func (k *Keyring) ServerProof(t Transcript, key int) []byte {
	return mac(k.rpc[key], t.bytes("server"))
}

// VerifyServer checks the server's proof, made with the key the dialer's
// proof number index was made with.
func (k *Keyring) VerifyServer(t Transcript, index int, proof []byte) bool {
	if k == nil || index < 0 || index >= len(k.rpc) {
		return false
	}
	return hmac.Equal(proof, mac(k.rpc[index], t.bytes("server")))
}

// Message is the SCRAM AuthMessage of t: what a user's proof and the
// server's signature are computed over.
func (t Transcript) Message() []byte { return t.bytes("user") }
