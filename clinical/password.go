package clinical

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. They are stored with every
// hash (PHC string format), so raising them later only affects new hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 follows OWASP's argon2id guidance (at least 19 MiB, t=2).
var DefaultArgon2 = Argon2Params{Memory: 64 * 1024, Time: 2, Threads: 2}

// Passwords hashes and checks staff passwords. A semaphore bounds how many
// hashes run at once, so a flood of logins cannot exhaust memory.
type Passwords struct {
	Params Argon2Params
	sem    chan struct{}
}

// NewPasswords returns a hasher with the given parameters.
func NewPasswords(p Argon2Params) *Passwords {
	return &Passwords{Params: p, sem: make(chan struct{}, 4)}
}

// Hash returns the PHC string of password under a fresh random salt.
func (pw *Passwords) Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	pw.sem <- struct{}{}
	key := argon2.IDKey([]byte(password), salt, pw.Params.Time, pw.Params.Memory, pw.Params.Threads, 32)
	<-pw.sem
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		pw.Params.Memory, pw.Params.Time, pw.Params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// errBadHash is a stored hash that does not parse: a corrupted row.
var errBadHash = errors.New("stored password hash is malformed")

// Verify reports whether password matches the PHC string hash.
func (pw *Passwords) Verify(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory < 8 || p.Memory > 4<<20 || p.Time < 1 || p.Time > 64 || p.Threads < 1 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 16 {
		return false, errBadHash
	}
	pw.sem <- struct{}{}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	<-pw.sem
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when an account does not exist, so a
// login for an unknown email takes as long as one for a known email.
var dummyHash = sync.OnceValue(func() string {
	h, _ := NewPasswords(DefaultArgon2).Hash("airlock timing equaliser")
	return h
})

// Password length limits: NIST SP 800-63B favours length over composition
// rules; the upper bound only keeps hashing cheap to refuse.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

//go:embed common_passwords.txt
var commonPasswordsFile string

var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsFile))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			m[w] = true
		}
	}
	return m
})

// runs are sequences whose stretches make weak passwords ("qwertyuiopas",
// "123456789012", "abcdefghijkl").
var runs = []string{
	"abcdefghijklmnopqrstuvwxyz", "zyxwvutsrqponmlkjihgfedcba",
	"01234567890123456789", "98765432109876543210",
	"qwertyuiopasdfghjklzxcvbnm", "qwertzuiopasdfghjklyxcvbnm", "azertyuiopqsdfghjklmwxcvbn",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qazwsxedcrfvtgbyhnujmikolp",
}

// leet undoes common character substitutions before the list look-up.
var leet = strings.NewReplacer("@", "a", "4", "a", "3", "e", "1", "i", "!", "i", "0", "o", "$", "s", "5", "s", "7", "t", "+", "t")

// PasswordAdvice is the hint the enrolment page shows beside the password
// field. It states the rule CheckPassword applies, in the same words as its
// refusal, and its example passes the rule (TestPasswordAdviceMatchesRule).
const PasswordAdvice = "Use at least 12 characters; spaces count. Three or four unrelated words, " +
	"such as \u201cviolet tram orbit lantern\u201d, make a strong password that is easy to type. " +
	"Not accepted: a common password or phrase (also with digits or symbols added), one or two common words, " +
	"a repeated word, a keyboard run, or your email address."

// errWeakPassword refuses a password on the common list or built like one.
var errWeakPassword = errors.New("that password is too common or easy to guess: " +
	"a common password or phrase, one or two common words, a repetition or a keyboard run; " +
	"three or four unrelated words work well")

// CheckPassword applies the password policy: at least MinPasswordLength
// characters, and not a common password or phrase, one or two common words,
// a run of keys, a repetition, or built from the account's own email
// (PasswordAdvice says the same to staff). Words of the list are fine
// inside a longer phrase of unrelated words: that is the style the advice
// recommends. The message is safe to show.
func CheckPassword(password, email string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLength:
		return fmt.Errorf("the password must have at least %d characters", MinPasswordLength)
	case n > MaxPasswordLength:
		return fmt.Errorf("the password must have at most %d characters", MaxPasswordLength)
	case !utf8.ValidString(password):
		return errors.New("the password is not valid text")
	}
	lower := strings.ToLower(password)
	squashed := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, lower)
	weak := errWeakPassword
	list := commonPasswords()
	// The password itself, or a listed word padded with digits and symbols
	// ("Password2024!!", "iloveyou123456"), with common substitutions undone.
	// Digits and symbols between words ("Summer 2024 winter!") add as
	// little: the letters alone are tried too.
	core := strings.TrimFunc(squashed, func(r rune) bool { return !unicode.IsLetter(r) })
	letters := func(s string) string {
		return strings.Map(func(r rune) rune {
			if unicode.IsLetter(r) {
				return r
			}
			return -1
		}, s)
	}
	for _, cand := range []string{squashed, leet.Replace(squashed), core, leet.Replace(core), letters(squashed), letters(leet.Replace(squashed))} {
		if cand != "" && (list[cand] || isRepetition(cand) || twoListed(list, cand)) {
			return weak
		}
	}
	if isRepetition(squashed) {
		return weak
	}
	for _, r := range runs {
		if strings.Contains(r, squashed) || strings.Contains(r+r, squashed) {
			return weak
		}
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 && strings.Contains(squashed, local) {
		return errors.New("the password must not contain your email address")
	}
	return nil
}

// twoListed reports whether s is two entries of the list run together
// ("iloveyouforever", "sunshinerainbow"): a guesser tries those pairs
// right after the list itself.
func twoListed(list map[string]bool, s string) bool {
	for i := 1; i < len(s); i++ {
		if list[s[:i]] && list[s[i:]] {
			return true
		}
	}
	return false
}

// isRepetition reports whether s is one shorter string repeated
// ("abcabcabcabc", "aaaaaaaaaaaa", "passwordpassword").
func isRepetition(s string) bool {
	for size := 1; size <= len(s)/2; size++ {
		if len(s)%size == 0 && strings.Repeat(s[:size], len(s)/size) == s {
			return true
		}
	}
	return false
}
