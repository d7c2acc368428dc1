package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Passwords are stored as SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677): a
// random salt, an iteration count, StoredKey = SHA-256(ClientKey) and
// ServerKey, where ClientKey and ServerKey are HMACs of the PBKDF2-salted
// password. Neither the password nor anything that would let a reader of
// the server's memory or configuration log in is kept: a StoredKey
// verifies a proof but cannot make one. That is why the scheme is SCRAM
// rather than a plain salted hash (which the challenge-response of the
// RPC hello would have to use as its key, making the hash as good as the
// password) or bcrypt (which cannot take part in a challenge-response at
// all). PBKDF2 with 4096 iterations makes offline guessing of a stolen
// verifier slow, as in PostgreSQL's and MongoDB's SCRAM; it costs about a
// millisecond per plain-text check (RESP AUTH, HTTP), nothing per request.

// Password hashing parameters.
const (
	// DefaultIterations is the PBKDF2 iteration count of new verifiers.
	DefaultIterations = 4096
	// MinIterations and MaxIterations bound the counts accepted, from a
	// configuration or from a server's challenge (a dialer refuses to
	// spend more on a server's say-so).
	MinIterations = 4096
	MaxIterations = 1 << 20
	saltLen       = 16
	hashPrefix    = "scram-sha-256$"
)

// Level is what a grant allows on its tables; each level includes the
// ones below it.
type Level uint8

// Access levels.
const (
	LevelNone  Level = iota
	LevelRead        // GET, MGET, EXISTS, TTL, scans
	LevelWrite       // SET, DEL, INCR, EXPIRE, MSET, MULTI/EXEC, WAIT
	LevelAdmin       // create, drop and alter the tables; on every table ("*"), cluster administration too
)

func (l Level) String() string {
	switch l {
	case LevelRead:
		return "read"
	case LevelWrite:
		return "write"
	case LevelAdmin:
		return "admin"
	}
	return "none"
}

// ParseLevel parses "read", "write" or "admin".
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(s) {
	case "read":
		return LevelRead, nil
	case "write":
		return LevelWrite, nil
	case "admin":
		return LevelAdmin, nil
	}
	return LevelNone, fmt.Errorf("unknown access level %q (want read, write or admin)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Grant gives access at one level to some tables.
type Grant struct {
	// Tables names the tables; empty, or "*" among them, means every
	// table, and (for LevelAdmin) the cluster itself: nodes, meta
	// membership, migrations, rebalancing.
	Tables []string `json:"tables,omitempty"`
	// Access is the level granted.
	Access Level `json:"access"`
}

// User is one user of the cluster: its name, its credential and its
// grants.
type User struct {
	// Name is the user name (RESP AUTH user, client.Config.User).
	Name string `json:"name"`
	// Password is the user's password or token in clear text. It is
	// turned into a verifier when the server starts and not kept; prefer
	// PasswordHash in configuration files.
	Password string `json:"password,omitempty"`
	// PasswordHash is a verifier made by HashPassword ("zeppelin user
	// hash"), used when Password is empty.
	PasswordHash string `json:"password_hash,omitempty"`
	// Grants lists what the user may do; a user without grants can only
	// authenticate.
	Grants []Grant `json:"grants,omitempty"`
}

// Access is a user's compiled grants. A nil *Access allows everything (a
// cluster member).
type Access struct {
	all    Level
	tables map[string]Level
}

// Can reports whether a allows level l on table; table "" asks about the
// cluster as a whole, which only a grant on every table covers.
func (a *Access) Can(table string, l Level) bool {
	if a == nil {
		return true
	}
	if a.all >= l {
		return true
	}
	return table != "" && a.tables[table] >= l
}

// Max returns the highest level a grants on any table.
func (a *Access) Max() Level {
	if a == nil {
		return LevelAdmin
	}
	m := a.all
	for _, l := range a.tables {
		m = max(m, l)
	}
	return m
}

func compile(grants []Grant) *Access {
	a := &Access{tables: make(map[string]Level)}
	for _, g := range grants {
		if len(g.Tables) == 0 {
			a.all = max(a.all, g.Access)
		}
		for _, t := range g.Tables {
			if t == "*" {
				a.all = max(a.all, g.Access)
			} else {
				a.tables[t] = max(a.tables[t], g.Access)
			}
		}
	}
	return a
}

// verifier is a stored password.
type verifier struct {
	salt                 []byte
	iter                 int
	storedKey, serverKey []byte
}

// HashPassword returns a SCRAM-SHA-256 verifier of password, for
// User.PasswordHash.
func HashPassword(password string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	v := newVerifier(password, salt, DefaultIterations)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("%s%d$%s$%s$%s", hashPrefix, v.iter, b64(v.salt), b64(v.storedKey), b64(v.serverKey)), nil
}

func newVerifier(password string, salt []byte, iter int) verifier {
	sp := SaltedPassword(password, salt, iter)
	ck := hmacSHA(sp, []byte("Client Key"))
	sk := sha256.Sum256(ck)
	return verifier{salt: salt, iter: iter, storedKey: sk[:], serverKey: hmacSHA(sp, []byte("Server Key"))}
}

func parseVerifier(s string) (verifier, error) {
	rest, ok := strings.CutPrefix(s, hashPrefix)
	parts := strings.Split(rest, "$")
	if !ok || len(parts) != 4 {
		return verifier{}, errors.New("not a verifier made by HashPassword (scram-sha-256$iterations$salt$storedkey$serverkey)")
	}
	iter, err := strconv.Atoi(parts[0])
	if err != nil || iter < MinIterations || iter > MaxIterations {
		return verifier{}, fmt.Errorf("bad iteration count %q (want %d to %d)", parts[0], MinIterations, MaxIterations)
	}
	var v verifier
	v.iter = iter
	for i, dst := range []*[]byte{&v.salt, &v.storedKey, &v.serverKey} {
		b, err := base64.RawStdEncoding.DecodeString(parts[i+1])
		if err != nil || len(b) == 0 || i > 0 && len(b) != sha256.Size {
			return verifier{}, fmt.Errorf("bad field %d of the verifier", i+2)
		}
		*dst = b
	}
	return v, nil
}

// SaltedPassword is SCRAM's SaltedPassword: PBKDF2-HMAC-SHA256 of password.
func SaltedPassword(password string, salt []byte, iter int) []byte {
	k, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		panic(err) // only for parameters FIPS mode refuses
	}
	return k
}

func hmacSHA(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// ClientProof returns SCRAM's client proof of password over msg, and the
// server signature the dialer must then receive.
func ClientProof(password string, salt []byte, iter int, msg []byte) (proof, serverSig []byte) {
	sp := SaltedPassword(password, salt, iter)
	ck := hmacSHA(sp, []byte("Client Key"))
	sk := sha256.Sum256(ck)
	sig := hmacSHA(sk[:], msg)
	proof = make([]byte, len(ck))
	subtle.XORBytes(proof, ck, sig)
	return proof, hmacSHA(hmacSHA(sp, []byte("Server Key")), msg)
}

// Users is the set of configured users. It is immutable and safe for
// concurrent use; a nil *Users has no users.
type Users struct {
	byName map[string]*userEntry
	// fake salts the challenges of unknown users, so that a challenge
	// does not tell whether a name exists.
	fake []byte
}

type userEntry struct {
	name   string
	v      verifier
	access *Access
}

// NewUsers compiles users, hashing clear-text passwords. It reports every
// problem at once and returns nil, nil for no users.
func NewUsers(users []User) (*Users, error) {
	if err := CheckUsers(users); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, nil
	}
	u := &Users{byName: make(map[string]*userEntry), fake: Nonce()}
	for _, cu := range users {
		e := &userEntry{name: cu.Name, access: compile(cu.Grants)}
		if cu.Password != "" {
			salt := make([]byte, saltLen)
			_, _ = rand.Read(salt)
			e.v = newVerifier(cu.Password, salt, DefaultIterations)
		} else {
			e.v, _ = parseVerifier(cu.PasswordHash) // checked by CheckUsers
		}
		u.byName[cu.Name] = e
	}
	return u, nil
}

// CheckUsers reports every problem with a list of users at once.
func CheckUsers(users []User) error {
	var errs []error
	seen := make(map[string]bool)
	for i, u := range users {
		name := u.Name
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("user %d has no name", i+1))
			name = fmt.Sprintf("#%d", i+1)
		case !validUserName(name):
			errs = append(errs, fmt.Errorf("user name %q: use printable ASCII without spaces", name))
		case seen[name]:
			errs = append(errs, fmt.Errorf("user %q is defined twice", name))
		}
		seen[name] = true
		switch {
		case u.Password == "" && u.PasswordHash == "":
			errs = append(errs, fmt.Errorf("user %s has neither Password nor PasswordHash", name))
		case u.Password != "" && u.PasswordHash != "":
			errs = append(errs, fmt.Errorf("user %s has both Password and PasswordHash", name))
		case u.PasswordHash != "":
			if _, err := parseVerifier(u.PasswordHash); err != nil {
				errs = append(errs, fmt.Errorf("user %s: PasswordHash: %w", name, err))
			}
		}
		for _, g := range u.Grants {
			if g.Access < LevelRead || g.Access > LevelAdmin {
				errs = append(errs, fmt.Errorf("user %s: grant with unknown access level %d", name, g.Access))
			}
			for _, t := range g.Tables {
				if t == "" {
					errs = append(errs, fmt.Errorf("user %s: grant names an empty table", name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func validUserName(s string) bool {
	for _, ch := range []byte(s) {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return len(s) <= 128
}

// Len returns the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.byName)
}

// Params returns the salt and iteration count of user's verifier, for a
// challenge; an unknown user gets made-up ones, the same every time.
func (u *Users) Params(user string) (salt []byte, iter int) {
	if u == nil {
		return nil, DefaultIterations
	}
	if e := u.byName[user]; e != nil {
		return e.v.salt, e.v.iter
	}
	return hmacSHA(u.fake, []byte(user))[:saltLen], DefaultIterations
}

// Verify checks a SCRAM client proof of user's password over msg. On
// success it returns the server signature for the dialer and the user's
// access.
func (u *Users) Verify(user string, msg, proof []byte) (serverSig []byte, access *Access, ok bool) {
	if u == nil {
		return nil, nil, false
	}
	e := u.byName[user]
	if e == nil || len(proof) != sha256.Size {
		return nil, nil, false
	}
	sig := hmacSHA(e.v.storedKey, msg)
	ck := make([]byte, sha256.Size)
	subtle.XORBytes(ck, proof, sig)
	sk := sha256.Sum256(ck)
	if subtle.ConstantTimeCompare(sk[:], e.v.storedKey) != 1 {
		return nil, nil, false
	}
	return hmacSHA(e.v.serverKey, msg), e.access, true
}

// Check verifies a clear-text password (RESP AUTH, HTTP). It costs one
// PBKDF2 derivation (about a millisecond); an unknown user costs the same.
func (u *Users) Check(user, password string) (*Access, bool) {
	if u == nil {
		return nil, false
	}
	e := u.byName[user]
	v := verifier{salt: u.fake, iter: DefaultIterations, storedKey: make([]byte, sha256.Size)}
	if e != nil {
		v = e.v
	}
	sp := SaltedPassword(password, v.salt, v.iter)
	sk := sha256.Sum256(hmacSHA(sp, []byte("Client Key")))
	if subtle.ConstantTimeCompare(sk[:], v.storedKey) != 1 || e == nil {
		return nil, false
	}
	return e.access, true
}

// Names returns the user names, for messages.
func (u *Users) Names() []string {
	if u == nil {
		return nil
	}
	out := make([]string, 0, len(u.byName))
	for n := range u.byName {
		out = append(out, n)
	}
	return out
}
