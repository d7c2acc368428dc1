package wire

// Authenticated connections. A dialer with a cluster secret (or a user's
// password) sends a Hello with a Nonce; a server that authenticates answers
// it with a KindAuth AuthChallenge instead of a HelloReply, the dialer
// proves what it knows in a KindAuth AuthProof, and the server answers
// that with its HelloReply, whose Proof shows the dialer that the server
// knows the same key. All four frames carry the Hello's request ID. No
// secret or password crosses the wire, only HMACs over both nonces and the
// Hello's claims (see package internal/auth).

// AuthChallenge is a server's answer to a Hello with a Nonce.
type AuthChallenge struct {
	// Nonce is the server's challenge.
	Nonce []byte `msgpack:"nc"`
	// Salt and Iterations are the PBKDF2 parameters of Hello.User's
	// password (absent without a user).
	Salt       []byte `msgpack:"s,omitempty"`
	Iterations int    `msgpack:"i,omitempty"`
}

// AuthProof is the dialer's answer to an AuthChallenge.
type AuthProof struct {
	// Proofs holds one proof per cluster secret the dialer has, the one
	// it prefers first (at most auth.MaxSecrets).
	Proofs [][]byte `msgpack:"p,omitempty"`
	// User is the proof of Hello.User's password (SCRAM-SHA-256's client
	// proof).
	User []byte `msgpack:"u,omitempty"`
}
